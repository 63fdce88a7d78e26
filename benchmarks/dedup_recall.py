"""Recall and false merges of the duplicate and decontamination passes on a planted file.

tests/data/planted_questions.jsonl holds originals, exact copies, rewordings of an original
(`of` names it), distinct questions close to an original, and reworded questions of
tests/data/planted_benchmark.jsonl. The questions go through the build-wide duplicate pass and
decontamination as free text with their answers, in file order; the script prints how many
copies and rewordings were caught, how many distinct questions were merged, and how many
benchmark rewordings were caught.

With --embedder, it starts the simulator and runs the pass as a build with an `embedder` role
does: prose questions embedded through the gateway, and the unsure pairs put to the judge role.

    .venv/bin/python benchmarks/dedup_recall.py [--questions FILE] [--benchmark FILE] [--embedder]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from pathlib import Path

from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.llm import Gateway
from raspberry.llm.config import (
    BudgetConfig,
    GatewayConfig,
    LlmSettings,
    ModelConfig,
    ProviderConfig,
)
from raspberry.prompts import load_prompt
from raspberry.stages.candidates.config import DecontaminationConfig, NearDuplicateConfig
from raspberry.stages.candidates.decontamination import load_benchmarks, reworded_by_embedding
from raspberry.stages.questions import same_problem
from raspberry.stages.questions.dedup import UNSURE, Doc, find_duplicates

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


SETTINGS = LlmSettings(
    providers={"sim": ProviderConfig(kind="openai_compatible", base_url="sim")},
    models={
        "embedder": ModelConfig(provider="sim", model="sim-embed"),
        "judge": ModelConfig(provider="sim", model="sim-judge"),
    },
    prices={},
    gateway=GatewayConfig(cache_path=f"{tempfile.mkdtemp()}/cache.sqlite"),
    budget=BudgetConfig(),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", default=str(DATA / "planted_questions.jsonl"))
    parser.add_argument("--benchmark", default=str(DATA / "planted_benchmark.jsonl"))
    parser.add_argument("--embedder", action="store_true", help="embeddings and judge (sim)")
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.questions).read_text().splitlines()]
    with contextlib.ExitStack() as stack:
        runner = stack.enter_context(asyncio.Runner())
        gw = None
        if args.embedder:
            gw = Gateway(SETTINGS, stack.enter_context(running_sim(SimConfig())))
            stack.callback(lambda: runner.run(gw.__aexit__()))
        found, contaminated, judged = recall(rows, Path(args.benchmark), runner, gw)
    report(rows, found, contaminated, judged)


def recall(
    rows: list[dict[str, str]], benchmark: Path, runner: asyncio.Runner, gw: Gateway | None
) -> tuple[set[str], set[str], dict[str, list[str]]]:
    """(ids dropped as duplicates, ids contaminated, ids the judge merged and kept) of the rows:
    decontamination, then the duplicate pass; with a gateway, with embeddings and the judge."""
    benchmarks = load_benchmarks([benchmark], 13, overlap=0.4)
    contaminated = {r["id"] for r in rows if benchmarks.hit(r["question"], r["answer"], prose=True)}
    if gw:
        rest = [r for r in rows if r["id"] not in contaminated]
        hits = runner.run(
            reworded_by_embedding(
                lambda texts: gw.embed("embedder", texts),
                benchmarks,
                [(r["question"], r["answer"]) for r in rest],
                DecontaminationConfig().embedding_similarity,
            )
        )
        contaminated |= {r["id"] for r, hit in zip(rest, hits, strict=True) if hit}
    docs = [
        Doc((0, i), r["id"], "files/planted", r["question"], prose=True, answer=r["answer"])
        for i, r in enumerate(rows)
        if r["id"] not in contaminated
    ]
    ref_of = {doc.key: doc.ref for doc in docs}
    texts = {r["id"]: (r["question"], r["answer"]) for r in rows}
    judged: dict[str, list[str]] = {"same": [], "different": []}
    found = find_duplicates(
        lambda: docs,
        NearDuplicateConfig(),
        vectors=(
            (lambda batch: runner.run(gw.embed("embedder", [d.text for d in batch])))
            if gw
            else None
        ),
        unsure=gw is not None,
    )
    dropped = set()
    prompt = load_prompt(ROOT / "prompts", "same_problem", same_problem.PLACEHOLDERS)
    for f in found:
        later = ref_of[f.key]
        if f.reason == UNSURE and gw:
            first = texts[ref_of[f.other[1:]]]  # type: ignore[index]
            same = runner.run(same_problem.ask(gw, prompt, first, texts[later]))
            judged["same" if same else "different"].append(later)
            if not same:
                continue
        dropped.add(later)
    return dropped, contaminated, judged


def report(
    rows: list[dict[str, str]],
    dropped_ids: set[str],
    contaminated: set[str],
    judged: dict[str, list[str]],
) -> None:
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
                "judge_merged": judged["same"],
                "judge_kept": judged["different"],
            }
        )
    )


if __name__ == "__main__":
    main()
