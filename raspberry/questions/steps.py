"""Question sources, filters and checks, in the order a build applies them.

1. candidates (per shard): reasoning-gym, files and LLM synthesis write this shard's share; format
   rules and decontamination drop what they must; evolution deepens a share of what is left.
2. duplicates (once per build, over all candidate shards): exact and near-duplicate removal,
   also against earlier builds' questions (dedup.py).
3. questions (per shard): the duplicate decisions applied, then the paid checks: reference answers
   confirmed by independent teacher solutions, and the student's pass-rate band (confirm.py).

Every row stays in its shard, a dropped one with its reason, so each question is accounted for.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from raspberry.config import BuildConfig
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.questions import evolution, files, reasoning_gym_source, synthesis
from raspberry.questions.config import QuestionsConfig
from raspberry.questions.confirm import confirm, difficulty
from raspberry.questions.decontamination import BenchmarkNgrams, load_benchmarks
from raspberry.questions.dedup import Doc, find_duplicates
from raspberry.questions.filters import format_problem
from raspberry.questions.semantic import answer_of
from raspberry.records import Question
from raspberry.verify import has_verifier

MAX_REPORTED = 100  # malformed file rows listed in a shard's report; all are counted
# Sources whose reference answers no scorer vouches for.
UNCONFIRMED = {synthesis.SOURCE, evolution.SOURCE}


def validate(config: BuildConfig, output_dir: str) -> None:
    """Fail fast, before any shard runs, on a bad task, question file or benchmark file."""
    reasoning_gym_source.validate(config.questions)
    files.validate(config.questions, Path(config.source).parent)
    benchmarks(config)


def benchmarks(config: BuildConfig) -> BenchmarkNgrams:
    d = config.questions.filters.decontamination
    folder = Path(config.source).parent
    paths = [(folder / p).resolve() for p in d.benchmarks]
    return load_benchmarks(paths, d.ngram, d.semantic_overlap)


def _screen(rows: list[Question], config: BuildConfig, index: BenchmarkNgrams) -> list[Question]:
    """Format rules, then decontamination, on the rows still kept."""
    out = []
    for q in rows:
        if q.kept:
            problem = format_problem(q.prompt, config.questions.filters)
            answer, free_text = answer_of(q.reference_answer, q.verification)
            prose = free_text and q.source != reasoning_gym_source.SOURCE
            if problem is None and (hit := index.hit(q.prompt, answer, prose)):
                problem = ("contaminated", hit)
            if problem:
                q = q.model_copy(update={"drop_reason": problem[0], "drop_detail": problem[1]})
        out.append(q)
    return out


async def candidates(
    gw: Gateway,
    config: BuildConfig,
    prompts: dict[str, Prompt],
    config_hash: str,
    shard: int,
) -> tuple[list[Question], dict[str, Any]]:
    """This shard's candidate rows (kept and dropped), and its report."""
    cfg = config.questions
    index = benchmarks(config)
    from_files, malformed = files.generate(cfg, Path(config.source).parent, config_hash, shard)
    rows = reasoning_gym_source.generate(cfg, config_hash, shard) + from_files
    if cfg.synthesis:
        rows += await synthesis.generate(
            gw, cfg, prompts["question_writer_prompt"], config_hash, shard
        )
    rows = _screen(rows, config, index)
    if cfg.evolution:
        rows += _screen(
            await evolution.evolve(gw, cfg, prompts["evolver_prompt"], rows), config, index
        )
    report = {
        **funnel(rows),
        "malformed_rows": len(malformed),
        "malformed": malformed[:MAX_REPORTED],
    }
    return rows, report


def _batches(url: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    with fsspec.open(url, "rb") as fh:
        yield from pq.ParquetFile(fh).iter_batches(batch_size=4096, columns=columns)


def _docs(urls: list[str], earlier: bool = False) -> Iterator[Doc]:
    """The kept rows of shard files (by URL) as documents, read in batches (never a whole
    build)."""
    for shard, url in enumerate(urls):
        row = 0
        build = posixpath.basename(posixpath.dirname(posixpath.dirname(url)))
        columns = [
            "id", "root_id", "source", "task", "prompt", "reference_answer", "verification",
            "drop_reason",
        ]  # fmt: skip
        for batch in _batches(url, columns):
            for rec in batch.to_pylist():
                answer, free_text = answer_of(rec["reference_answer"] or "", rec["verification"])
                if not rec["drop_reason"]:
                    ref = f"{build}/{rec['id']}" if earlier else rec["id"]
                    yield Doc(
                        key=(shard, row),
                        ref=ref,
                        group=f"{rec['source']}/{rec['task']}",
                        text=rec["prompt"],
                        family=rec["root_id"] or rec["id"],
                        prose=free_text and rec["source"] != reasoning_gym_source.SOURCE,
                        answer=answer,
                        earlier=earlier,
                    )
                row += 1


def duplicates(cfg: QuestionsConfig, shards: list[str], earlier: list[str]) -> list[dict[str, Any]]:
    """Every candidate to drop as a duplicate: {shard, row, reason, detail}, in build order."""
    found = find_duplicates(
        lambda: _docs(shards),
        cfg.filters.near_duplicates,
        (lambda: _docs(earlier, earlier=True)) if earlier else None,
    )
    return [
        {"shard": shard, "row": row, "reason": reason, "detail": detail}
        for (shard, row), reason, detail in found
    ]


def needs_confirmation(cfg: QuestionsConfig, q: Question) -> bool:
    return q.source in UNCONFIRMED or (
        q.source == files.SOURCE and files.needs_confirmation(cfg, q)
    )


async def checked(
    gw: Gateway,
    config: BuildConfig,
    rows: list[Question],
    drops: dict[int, tuple[str, str]],
    teacher: Prompt,
    config_hash: str,
) -> list[Question]:
    """The shard's questions: duplicates dropped, then references confirmed, then difficulty."""
    cfg = config.questions

    async def one(i: int, q: Question) -> Question:
        q = q.model_copy(
            update={"lineage": q.lineage.model_copy(update={"config_hash": config_hash})}
        )
        if q.kept and i in drops:
            q = q.model_copy(update={"drop_reason": drops[i][0], "drop_detail": drops[i][1]})
        if q.kept and needs_confirmation(cfg, q):
            q = await confirm(gw, q, teacher, cfg.confirm)
        if q.kept and cfg.difficulty and has_verifier(q.verification):
            q = await difficulty(gw, q, teacher, cfg.difficulty)
        return q

    return await gather_rows((f"question {q.id}", one(i, q)) for i, q in enumerate(rows))


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
