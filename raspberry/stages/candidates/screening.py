"""The candidates of a shard: every source the config asks for writes its share (registry.py),
format rules and decontamination drop what they must, and evolution deepens a share of what is
left. Every row stays, a dropped one with its reason."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from raspberry.benchmark_files import read_benchmark
from raspberry.build_files.records import Question
from raspberry.llm import Gateway
from raspberry.prompts import Prompt
from raspberry.stages.candidates import evolution, files, reasoning_gym_source, registry
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.decontamination import (
    BenchmarkNgrams,
    load_benchmarks,
    reworded_by_embedding,
)
from raspberry.stages.candidates.filters import format_problem
from raspberry.stages.candidates.semantic import answer_of
from raspberry.stages.candidates.sources import SourceContext
from raspberry.stages.estimate import SAMPLE, Questions, count
from raspberry.verify import has_verifier

MAX_REPORTED = 100  # malformed file rows listed in a shard's report; all are counted


def validate(cfg: QuestionsConfig, folder: Path) -> None:
    """Fail fast, before any shard runs, on a bad source (a task, a question file, a source's
    settings) or benchmark file. folder: where relative paths start (the config's)."""
    registry.check(SourceContext(cfg, folder, "", 0))
    benchmarks(cfg, folder)


def benchmarks(cfg: QuestionsConfig, folder: Path) -> BenchmarkNgrams:
    d = cfg.filters.decontamination
    paths = [(folder / p).resolve() for p in d.benchmarks]
    return load_benchmarks(paths, d.ngram, d.semantic_overlap)


def _prose(q: Question) -> tuple[str, bool]:
    """(what a rewording must share, whether it is free text compared as a problem)."""
    answer, free_text = answer_of(q.reference_answer, q.verification)
    return answer, free_text and q.source != reasoning_gym_source.SOURCE


async def _screen(
    gw: Gateway, rows: list[Question], cfg: QuestionsConfig, index: BenchmarkNgrams
) -> list[Question]:
    """Format rules, then decontamination, on the rows still kept; with an embedder role, the
    prose left is also compared with the benchmark questions by embedding."""
    out = []
    for q in rows:
        if q.kept:
            problem = format_problem(q.prompt, cfg.filters)
            answer, prose = _prose(q)
            if problem is None and (hit := index.hit(q.prompt, answer, prose)):
                problem = ("contaminated", hit)
            if problem:
                q = q.model_copy(update={"drop_reason": problem[0], "drop_detail": problem[1]})
        out.append(q)
    if not gw.has_role("embedder"):
        return out
    prose = [i for i, q in enumerate(out) if q.kept and _prose(q)[1]]
    hits = await reworded_by_embedding(
        lambda texts: gw.embed("embedder", texts),
        index,
        [(out[i].prompt, _prose(out[i])[0]) for i in prose],
        cfg.filters.decontamination.embedding_similarity,
    )
    for i, hit in zip(prose, hits, strict=True):
        if hit:
            out[i] = out[i].model_copy(update={"drop_reason": "contaminated", "drop_detail": hit})
    return out


async def candidates(
    gw: Gateway,
    cfg: QuestionsConfig,
    folder: Path,
    prompts: dict[str, Prompt],
    config_hash: str,
    shard: int,
) -> tuple[list[Question], dict[str, Any]]:
    """This shard's candidate rows (kept and dropped), and its report."""
    index = benchmarks(cfg, folder)
    ctx = SourceContext(cfg, folder, config_hash, shard, gw, prompts)
    rows = await _screen(gw, await registry.generate(ctx), cfg, index)
    malformed = ctx.malformed
    if cfg.evolution:
        evolved = await evolution.evolve(gw, cfg, prompts["evolver_prompt"], rows)
        rows += await _screen(gw, evolved, cfg, index)
    report = {
        **funnel(rows),
        "malformed_rows": len(malformed),
        "malformed": malformed[:MAX_REPORTED],
    }
    return rows, report


def funnel(rows: list[Question]) -> dict[str, Any]:
    """Additive counts: rows and kept rows per source, and drops per reason."""
    by_source: dict[str, dict[str, int]] = {}
    for q in rows:
        entry = by_source.setdefault(q.source, {"rows": 0, "kept": 0})
        entry["rows"] += 1
        entry["kept"] += q.kept
    return {
        "by_source": by_source,
        "drop_reasons": dict(Counter(q.drop_reason for q in rows if not q.kept)),
        "kept_by_task": dict(Counter(q.task for q in rows if q.kept)),
    }


def questions_of(cfg: QuestionsConfig, folder: Path) -> Questions:
    """What the estimate knows of the build's questions before any is written: the free
    sources' questions, made as the build makes them, and what the paid ones will write."""
    made: list[Question] = []
    for shard in range(cfg.shards):
        ctx = SourceContext(cfg, folder, "estimate", shard)
        made += asyncio.run(registry.generate(ctx, free_only=True))
    sample = made[:: max(1, len(made) // SAMPLE)] if made else []
    mean = sum(count(x.prompt) for x in sample) / len(sample) if sample else 0.0
    return Questions(
        free=len(made),
        free_tokens=mean,
        free_unverified=sum(not has_verifier(x.verification) for x in made),
        written=sum(s.planned(cfg) for s in registry.asked_for(cfg) if s.planned),
        confirmed_files=sum(files.needs_confirmation(cfg, x) for x in made),
        benchmark_items=sum(
            len(read_benchmark(folder / p)) for p in cfg.filters.decontamination.benchmarks
        ),
    )
