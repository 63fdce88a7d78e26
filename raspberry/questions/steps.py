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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raspberry.config import BuildConfig
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.questions import evolution, files, reasoning_gym_source, synthesis
from raspberry.questions.config import QuestionsConfig
from raspberry.questions.confirm import confirm, difficulty
from raspberry.questions.decontamination import (
    BenchmarkNgrams,
    load_benchmarks,
    reworded_by_embedding,
)
from raspberry.questions.dedup import Doc, find_duplicates
from raspberry.questions.filters import format_problem
from raspberry.questions.same_problem import Unsure, settle
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


def _prose(q: Question) -> tuple[str, bool]:
    """(what a rewording must share, whether it is free text compared as a problem)."""
    answer, free_text = answer_of(q.reference_answer, q.verification)
    return answer, free_text and q.source != reasoning_gym_source.SOURCE


async def _screen(
    gw: Gateway, rows: list[Question], config: BuildConfig, index: BenchmarkNgrams
) -> list[Question]:
    """Format rules, then decontamination, on the rows still kept; with an embedder role, the
    prose left is also compared with the benchmark questions by embedding."""
    out = []
    for q in rows:
        if q.kept:
            problem = format_problem(q.prompt, config.questions.filters)
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
        config.questions.filters.decontamination.embedding_similarity,
    )
    for i, hit in zip(prose, hits, strict=True):
        if hit:
            out[i] = out[i].model_copy(update={"drop_reason": "contaminated", "drop_detail": hit})
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
    rows = await _screen(gw, rows, config, index)
    if cfg.evolution:
        evolved = await evolution.evolve(gw, cfg, prompts["evolver_prompt"], rows)
        rows += await _screen(gw, evolved, config, index)
    report = {
        **funnel(rows),
        "malformed_rows": len(malformed),
        "malformed": malformed[:MAX_REPORTED],
    }
    return rows, report


def _batches(url: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    with fsspec.open(url, "rb") as fh:
        yield from pq.ParquetFile(fh).iter_batches(batch_size=4096, columns=columns)


def _rows(urls: list[str], columns: list[str]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(shard, row, record) of every row of shard files (by URL), read in batches."""
    for shard, url in enumerate(urls):
        row = 0
        for batch in _batches(url, columns):
            for rec in batch.to_pylist():
                yield shard, row, rec
                row += 1


def _docs(urls: list[str], earlier: bool = False) -> Iterator[Doc]:
    """The kept rows of shard files (by URL) as documents, read in batches (never a whole
    build)."""
    columns = [
        "id", "root_id", "source", "task", "prompt", "reference_answer", "verification",
        "drop_reason",
    ]  # fmt: skip
    for shard, row, rec in _rows(urls, columns):
        if rec["drop_reason"]:
            continue
        answer, free_text = answer_of(rec["reference_answer"] or "", rec["verification"])
        build = posixpath.basename(posixpath.dirname(posixpath.dirname(urls[shard])))
        yield Doc(
            key=(shard, row),
            ref=f"{build}/{rec['id']}" if earlier else rec["id"],
            group=f"{rec['source']}/{rec['task']}",
            text=rec["prompt"],
            family=rec["root_id"] or rec["id"],
            prose=free_text and rec["source"] != reasoning_gym_source.SOURCE,
            answer=answer,
            earlier=earlier,
        )


Embed = Callable[[list[str]], list[np.ndarray]]  # texts -> unit vectors (the embedder role)


def duplicates(
    cfg: QuestionsConfig,
    shards: list[str],
    earlier: list[str],
    embed: Embed | None = None,
    unsure: bool = False,
) -> list[dict[str, Any]]:
    """Every candidate to drop as a duplicate, and (when `unsure`) every unsure pair with the
    earlier question's text and answer for the judge: {shard, row, reason, detail, other_*},
    in build order."""
    found = list(
        find_duplicates(
            lambda: _docs(shards),
            cfg.filters.near_duplicates,
            (lambda: _docs(earlier, earlier=True)) if earlier else None,
            (lambda docs: embed([d.text for d in docs])) if embed else None,
            unsure,
        )
    )
    # The judge needs the earlier question's words, which the pass did not keep: one more read,
    # of the rows named only.
    wanted = {f.other for f in found if f.other}
    texts: dict[tuple[bool, int, int], dict[str, Any]] = {}
    for is_earlier, urls in ((True, earlier), (False, shards)):
        if any(w[0] == is_earlier for w in wanted):
            for shard, row, rec in _rows(urls, ["id", "prompt", "reference_answer"]):
                if (is_earlier, shard, row) in wanted:
                    texts[(is_earlier, shard, row)] = rec
    rows = []
    for f in found:
        other = texts.get(f.other) if f.other else None
        rows.append(
            {
                "shard": f.key[0],
                "row": f.key[1],
                "reason": f.reason,
                "detail": f.detail,
                "other_id": other["id"] if other else None,
                "other_prompt": other["prompt"] if other else None,
                "other_answer": other["reference_answer"] if other else None,
            }
        )
    return rows


def needs_confirmation(cfg: QuestionsConfig, q: Question) -> bool:
    return q.source in UNCONFIRMED or (
        q.source == files.SOURCE and files.needs_confirmation(cfg, q)
    )


async def checked(
    gw: Gateway,
    config: BuildConfig,
    rows: list[Question],
    drops: dict[int, tuple[str, str]],
    teacher: Prompt | None,
    config_hash: str,
    unsure: tuple[dict[int, Unsure], Prompt] | None = None,
) -> list[Question]:
    """The shard's questions: duplicates dropped (unsure ones as the judge says), then
    references confirmed, then difficulty."""
    cfg = config.questions
    pairs, judge_prompt = unsure or ({}, None)

    async def one(i: int, q: Question) -> Question:
        q = q.model_copy(
            update={"lineage": q.lineage.model_copy(update={"config_hash": config_hash})}
        )
        if q.kept and i in drops:
            q = q.model_copy(update={"drop_reason": drops[i][0], "drop_detail": drops[i][1]})
        if q.kept and i in pairs:
            q = await settle(gw, judge_prompt, q, pairs[i])  # type: ignore[arg-type]
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
