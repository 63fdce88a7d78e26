"""The labelled verification set: accept-precision >= 99% and recall >= 95% for every verifier.

`pytest tests/test_verification_set.py -s` prints the table.
"""

from collections import defaultdict

from verification_cases import cases

from raspberry.verify import check


def test_precision_and_recall_per_verifier():
    labelled = cases()
    assert len(labelled) >= 300
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses = []
    for kind, spec, text, correct in labelled:
        passed = check(spec, text).passed
        outcome = {(True, True): "tp", (False, True): "fp", (True, False): "fn"}
        counts[kind][outcome.get((correct, passed), "tn")] += 1
        if passed != correct:
            misses.append((kind, correct, text[-120:], check(spec, text).reason))
    print(f"\n{'verifier':<14} {'cases':>5} {'right':>5} {'precision':>9} {'recall':>7}")
    for kind, c in sorted(counts.items()):
        accepted, right = c["tp"] + c["fp"], c["tp"] + c["fn"]
        precision = c["tp"] / accepted if accepted else 1.0
        recall = c["tp"] / right if right else 1.0
        print(f"{kind:<14} {sum(c.values()):>5} {right:>5} {precision:>9.3f} {recall:>7.3f}")
        assert precision >= 0.99, (kind, misses)
        assert recall >= 0.95, (kind, misses)
    print(f"{'all':<14} {len(labelled):>5}; misclassified: {len(misses)}")
    for miss in misses:
        print("  miss:", miss)
