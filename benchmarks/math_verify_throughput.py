"""Math-verify throughput through the project's worker pool, called from several threads at once.

    python benchmarks/math_verify_throughput.py [--pairs 10000] [--threads 4] [--workers N]

Checks N labelled (gold, answer) pairs (fractions, decimals, radicals, polynomials, sets; a third
of them wrong) the way shard tasks do: from threads, never the main one. Prints one JSON line:
pairs, wall_s, pairs_per_s, timeouts, mislabelled (verdicts that differ from the label), and
thread_errors (exceptions such as math-verify's "signal only works in main thread").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from raspberry.verify.math import MathPool  # noqa: E402


def pairs(n: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(1, 99), rng.randint(2, 99)
        kind = i % 5
        if kind == 0:
            gold, right, wrong = rf"\frac{{{a}}}{{{b}}}", f"{a * 3}/{b * 3}", f"{a + 1}/{b}"
        elif kind == 1:
            gold, right, wrong = f"{a}.{b:02d}", f"{a}.{b:02d}0", f"{a}.{b + 1:02d}"
        elif kind == 2:
            gold, right, wrong = rf"{a}\sqrt{{2}}", rf"\sqrt{{{2 * a * a}}}", rf"{a}\sqrt{{3}}"
        elif kind == 3:
            gold, right, wrong = f"x^2+{2 * a}x+{a * a}", f"(x+{a})^2", f"(x-{a})^2"
        else:
            gold, right, wrong = rf"\{{{a},{b}\}}", rf"\{{{b},{a}\}}", rf"\{{{a},{b + 1}\}}"
        correct = rng.random() < 2 / 3
        out.append((gold, right if correct else wrong, correct))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    args = parser.parse_args()
    labelled = pairs(args.pairs)
    pool = MathPool(workers=args.workers)
    pool.verify_many([("1", "1")])  # start the workers before the clock
    chunks = [labelled[i :: args.threads] for i in range(args.threads)]
    results: list[list[bool | None]] = [[] for _ in chunks]
    errors: list[str] = []

    def work(k: int) -> None:
        try:
            results[k] = pool.verify_many([(g, a) for g, a, _ in chunks[k]])
        except Exception as exc:  # counted and printed: the point is that there are none
            errors.append(repr(exc))

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    pool.close()
    verdicts = [
        (r, c)
        for chunk, res in zip(chunks, results, strict=True)
        for (_, _, c), r in zip(chunk, res, strict=False)
    ]
    print(
        json.dumps(
            {
                "pairs": len(labelled),
                "checked": len(verdicts),
                "threads": args.threads,
                "workers": pool.workers,
                "wall_s": round(wall, 2),
                "pairs_per_s": round(len(verdicts) / wall, 1),
                "timeouts": sum(r is None for r, _ in verdicts),
                "mislabelled": sum(r is not None and r != c for r, c in verdicts),
                "thread_errors": len(errors),
            }
        )
    )


if __name__ == "__main__":
    main()
