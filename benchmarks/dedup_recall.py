"""Recall and false merges of the duplicate and decontamination passes on a planted file.

tests/data/planted_questions.jsonl holds originals, exact copies, rewordings of an original
(`of` names it), distinct questions close to an original, and reworded questions of
tests/data/planted_benchmark.jsonl. The questions go through the build-wide duplicate pass and
decontamination as free text with their answers, in file order; the script prints how many
copies and rewordings were caught, how many distinct questions were merged, and how many
benchmark rewordings were caught.

    .venv/bin/python benchmarks/dedup_recall.py [--questions FILE] [--benchmark FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from raspberry.questions.config import NearDuplicateConfig
from raspberry.questions.decontamination import load_benchmarks
from raspberry.questions.dedup import Doc, find_duplicates

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", default=str(DATA / "planted_questions.jsonl"))
    parser.add_argument("--benchmark", default=str(DATA / "planted_benchmark.jsonl"))
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.questions).read_text().splitlines()]
    benchmarks = load_benchmarks([Path(args.benchmark)], 13, overlap=0.4)
    contaminated = {r["id"] for r in rows if benchmarks.hit(r["question"], r["answer"], prose=True)}
    docs = [
        Doc((0, i), r["id"], "files/planted", r["question"], prose=True, answer=r["answer"])
        for i, r in enumerate(rows)
        if r["id"] not in contaminated
    ]
    ref_of = {doc.key: doc.ref for doc in docs}
    found = find_duplicates(lambda: docs, NearDuplicateConfig())
    dropped_ids = {ref_of[key] for key, _, _ in found}
    kinds: dict[str, list[str]] = {}
    for r in rows:
        kinds.setdefault(r["planted"], []).append(r["id"])

    def share(kind: str, hit: set[str]) -> str:
        ids = kinds.get(kind, [])
        return f"{sum(i in hit for i in ids)}/{len(ids)}"

    bench = set(kinds.get("benchmark_reworded", []))
    print(
        json.dumps(
            {
                "rows": len(rows),
                "exact_copies_caught": share("exact_copy", dropped_ids),
                "rewordings_caught": share("reworded", dropped_ids),
                "originals_dropped": share("original", dropped_ids),
                "distinct_merged": share("distinct", dropped_ids | contaminated),
                "benchmark_rewordings_caught": share("benchmark_reworded", contaminated),
                "other_rows_contaminated": len(contaminated - bench),
            }
        )
    )


if __name__ == "__main__":
    main()
