"""The issue's scale check: 10,000 reasoning-gym questions over 25 task types plus 500 written by
the simulated question writer, through candidates, the duplicate pass and the checks. The kept
set is then measured with code of this test's own: exact Jaccard over every pair that shares a
shingle (an inverted index, no hashing, no sampling of pairs), a pair counting as duplicates only
with the same answer (rule puzzles: the same rules), and every 13-gram of every kept question
against the benchmark files."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict

from conftest import ROOT
from raspberry_sim.config import settings
from raspberry_sim.process import running_sim
from test_questions import build_config, run_questions

TASKS = (
    "basic_arithmetic calendar_arithmetic chain_sum complex_arithmetic count_bits count_primes "
    "cryptarithm decimal_arithmetic dice family_relationships fraction_simplification gcd lcm "
    "leg_counting letter_counting number_filtering number_format number_sorting power_function "
    "simple_geometry syllogism time_intervals spell_backward word_sorting base_conversion"
).split()
SAMPLE = 500


def _tokens(text: str) -> list[str]:
    # The test's own normalisation: lower case, sentence punctuation dropped, symbols kept.
    import re

    text = re.sub(r"[.,;:!?'\"“”‘’()\[\]{}]+", " ", text.lower())
    return re.findall(r"\w+|[^\w\s]", text)


def _grams(tokens: list[str], n: int) -> set[str]:
    if len(tokens) < n:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def test_ten_thousand_plus_five_hundred_questions(tmp_path):
    per_task = 10_000 // len(TASKS)
    bench_jsonl = tmp_path / "bench.jsonl"
    bench_jsonl.write_text(
        "\n".join(
            json.dumps({"id": f"b{i}", "question": q, "answer": "1"})
            for i, q in enumerate(
                [
                    "A bakery sells loaves in the morning and rolls in the afternoon; how many "
                    "items does it sell if it sells forty loaves and sixty rolls in one day?",
                    "Which planet in the solar system has the shortest year and the hottest days?",
                ]
            )
        )
    )
    benchmarks = [str(ROOT / "configs/simplebench_sample.json"), str(bench_jsonl)]
    config = build_config(
        tmp_path,
        {
            "seed": 11,
            "shards": 2,
            "reasoning_gym": [{"task": t, "count": per_task} for t in TASKS],
            "synthesis": {
                "count": 500,
                "taxonomy": {
                    "domains": {
                        "physics": ["optics", "heat", "motion"],
                        "logistics": ["shipping", "stock", "routing"],
                        "biology": ["genetics", "ecology"],
                    },
                    "personas": ["a nurse", "a pilot", "a baker", "a chess coach"],
                    "difficulties": ["hard", "very hard"],
                },
            },
            "confirm": {"solutions": 3, "rule": "majority"},
            "filters": {"decontamination": {"benchmarks": benchmarks}},
        },
    )
    with running_sim(settings(config.sim)) as url:
        rows, cand_stats, stats = run_questions(config, url, tmp_path / "out")
    assert Counter(q.source for q in rows) == {"reasoning_gym": 10_000, "synthesis": 500}
    kept = [q for q in rows if q.kept]
    lost = Counter((q.task, q.drop_reason) for q in rows if not q.kept)
    assert len({q.task for q in kept if q.source == "reasoning_gym"}) == 25, lost
    assert sum(q.source == "reasoning_gym" for q in kept) > 9_500
    assert sum(q.source == "synthesis" for q in kept) > 200

    # Boilerplate, computed here over all kept questions of each group (not a sample).
    groups: dict[str, list[int]] = defaultdict(list)
    tokens = [_tokens(q.prompt) for q in kept]
    for i, q in enumerate(kept):
        groups[f"{q.source}/{q.task}"].append(i)
    five: list[set[str]] = [set()] * len(kept)
    bags: list[set[str]] = [set()] * len(kept)
    for members in groups.values():
        df: Counter[str] = Counter()
        for i in members:
            df.update(_grams(tokens[i], 5) | set(tokens[i]))
        common = (
            {g for g, c in df.items() if c >= 0.5 * len(members)} if len(members) >= 8 else set()
        )
        for i in members:
            five[i] = (_grams(tokens[i], 5) - common) or _grams(tokens[i], 5)
            bags[i] = (set(tokens[i]) - common) or set(tokens[i])

    def same_answer(i: int, j: int) -> bool:
        # Different answers (for a rule puzzle, different rules) make different problems,
        # however alike the words: "7 words about X" is not "9 words about X".
        a, b = json.loads(kept[i].verification), json.loads(kept[j].verification)
        if "constraint" in (a.get("kind"), b.get("kind")):
            return a.get("rules") == b.get("rules")
        return kept[i].reference_answer.strip().lower() == kept[j].reference_answer.strip().lower()

    def near(i: int, j: int) -> bool:
        a, b = five[i], five[j]
        if len(a & b) / len(a | b) >= 0.8:
            return same_answer(i, j)
        # Procedural items and rule puzzles ("7 words about heat") are compared in word order
        # only: as bags of words, "about heat" and "about stock" would be one question.
        prose = all(
            kept[k].source != "reasoning_gym"
            and json.loads(kept[k].verification).get("kind") != "constraint"
            for k in (i, j)
        )
        alike = prose and len(bags[i] & bags[j]) / len(bags[i] | bags[j]) >= 0.75
        return alike and same_answer(i, j)

    postings: dict[str, list[int]] = defaultdict(list)
    for i in range(len(kept)):
        for g in five[i] | bags[i]:
            postings[g].append(i)
    sample = random.Random(0).sample(range(len(kept)), SAMPLE)
    with_partner = 0
    for i in sample:
        others = {j for g in five[i] | bags[i] for j in postings[g] if j != i}
        with_partner += any(near(i, j) for j in others)
    print(f"\nkept {len(kept)} of {len(rows)}; {with_partner} of {SAMPLE} sampled have a near-dup")
    assert with_partner / SAMPLE < 0.005, (
        f"{with_partner} of {SAMPLE} sampled have a near-duplicate"
    )

    # No kept question shares a 13-gram with a benchmark question.
    bench_grams: set[str] = set()
    for item in json.loads((ROOT / "configs/simplebench_sample.json").read_text())["eval_data"]:
        bench_grams |= _grams(_tokens(item["prompt"]), 13)
    for line in bench_jsonl.read_text().splitlines():
        bench_grams |= _grams(_tokens(json.loads(line)["question"]), 13)
    assert not [q.id for q, t in zip(kept, tokens, strict=True) if _grams(t, 13) & bench_grams]

    drops: Counter[str] = Counter()
    for s in cand_stats + stats:
        drops.update(s["drops"])
    # The pass did drop things, and the stage reports count every drop under its reason.
    assert drops["exact_duplicate"] > 0 and drops["reference_not_confirmed"] > 0
    assert drops == Counter(q.drop_reason for q in rows if not q.kept)
