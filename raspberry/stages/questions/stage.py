"""Questions: a shard's candidates with the build's duplicates dropped, then the paid checks
(reference answers confirmed by the teacher, difficulty by the student)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from raspberry.build_files.records import Question
from raspberry.build_files.store import BuildStore
from raspberry.errors import StoreError
from raspberry.figures import Block, Chart, tally
from raspberry.stages.candidates import stage as candidates
from raspberry.stages.candidates.screening import funnel
from raspberry.stages.config import BuildConfig
from raspberry.stages.estimate import Context, Line, line
from raspberry.stages.questions import duplicate_pass, paid_checks, same_problem
from raspberry.stages.questions.dedup import UNSURE
from raspberry.stages.questions.same_problem import Unsure
from raspberry.stages.spec import BuildContext, BuildInput, ShardContext, Stage, Stats

# The build-wide duplicate decisions: which candidate rows (shard, row) to drop, and why; and the
# unsure pairs, with the earlier question the judge compares them with.
DUPLICATES_SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("row", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("other_id", pa.string()),
        ("other_prompt", pa.string()),
        ("other_answer", pa.string()),
    ]
)


@dataclass(frozen=True)
class Duplicates:
    """One shard's part of the duplicates table: row -> (reason, detail), row -> unsure pair."""

    drops: dict[int, tuple[str, str]]
    unsure: dict[int, Unsure]


def read_duplicates(table: pa.Table, shard: int) -> Duplicates:
    mine = table.filter(pc.equal(table["shard"], shard)).to_pylist()
    return Duplicates(
        {r["row"]: (r["reason"], r["detail"]) for r in mine if r["reason"] != UNSURE},
        {
            r["row"]: Unsure(r["other_id"], r["other_prompt"], r["other_answer"] or "", r["detail"])
            for r in mine
            if r["reason"] == UNSURE
        },
    )


def _judges(config: BuildConfig) -> bool:
    """Whether unsure pairs of the duplicate pass go to the judge role."""
    return config.questions.filters.near_duplicates.judge_unsure and "judge" in config.models


def duplicates(ctx: BuildContext, shards: list[str], earlier: list[str]) -> list[dict[str, Any]]:
    """The duplicates table; with an embedder role, prose questions are embedded (through the
    gateway: cached, paid and budgeted like any request) as the pass reads them."""
    q = ctx.config.questions
    if "embedder" not in ctx.config.models:
        return duplicate_pass.duplicates(q, shards, earlier, unsure=_judges(ctx.config))
    with asyncio.Runner() as runner:
        gw = ctx.gateway()
        try:
            return duplicate_pass.duplicates(
                q,
                shards,
                earlier,
                lambda texts: runner.run(gw.embed("embedder", texts)),
                _judges(ctx.config),
            )
        finally:
            runner.run(gw.__aexit__())


def earlier_shards(config: BuildConfig, output_dir: str) -> list[str]:
    """The question shards of the earlier builds new questions must not repeat, in order."""
    urls = []
    for other in config.questions.filters.near_duplicates.earlier_builds:
        store = BuildStore(output_dir, other)
        found = store.shard_urls(STAGE.name)
        if not found:
            raise StoreError(
                f"questions.filters.near_duplicates.earlier_builds: build '{other}' has no "
                f"question shards under {store.files.url()}"
            )
        urls.extend(found)
    return urls


DUPLICATES = BuildInput(
    name="duplicates",
    reads=candidates.STAGE.name,
    compute=duplicates,
    schema=DUPLICATES_SCHEMA,
    read=read_duplicates,
    earlier=earlier_shards,
    summarise=lambda rows: {"rows": len(rows), "reasons": dict(Counter(r["reason"] for r in rows))},
)


def _check(config: BuildConfig, output_dir: str) -> None:
    earlier_shards(config, output_dir)  # raises when an earlier build it names has no shards


def _asks_teacher(config: BuildConfig) -> bool:
    """Whether the stage pays for teacher or student solutions."""
    q = config.questions
    return bool(q.synthesis or q.evolution or q.difficulty or any(f.confirm for f in q.files))


def prompts(config: BuildConfig) -> dict[str, tuple[str, set[str]]]:
    found = {}
    if _asks_teacher(config):
        found["teacher_prompt"] = (config.dialogues.teacher_prompt, set())
    if _judges(config):
        found["same_problem_prompt"] = ("same_problem", same_problem.PLACEHOLDERS)
    return found


def roles(config: BuildConfig) -> list[str]:
    q = config.questions
    return (
        (["teacher"] if _asks_teacher(config) else [])
        + (["student"] if q.difficulty else [])
        + (["judge"] if _judges(config) else [])
        + (["embedder"] if "embedder" in config.models else [])
    )


async def compute(
    ctx: ShardContext, candidates: list[Question], duplicates: Duplicates
) -> tuple[list[Question], Stats]:
    prompts = STAGE.load_prompts(ctx.config)
    async with ctx.gateway() as gw:
        rows = await paid_checks.checked(
            gw,
            ctx.config.questions,
            candidates,
            duplicates.drops,
            prompts.get("teacher_prompt"),
            ctx.key,
            (duplicates.unsure, prompts["same_problem_prompt"]) if duplicates.unsure else None,
        )
    report = funnel(rows)
    if ctx.config.questions.difficulty:
        report["pass_rates"] = pass_rates(rows, ctx.config.questions.difficulty.samples)
    # The rows carry the candidates' own drops too: this stage's are those it added.
    earlier = Counter(funnel(candidates)["drop_reasons"])
    return rows, {
        "rows_in": sum(q.kept for q in candidates),
        "rows_out": sum(q.kept for q in rows),
        "drops": dict(Counter(report["drop_reasons"]) - earlier),
        "report": report,
        **gw.stats.as_dict(),
    }


def pass_rates(rows: list[Question], samples: int) -> dict[str, dict[str, int]]:
    """Per source, how many questions the student passed k of `samples` times (all it tried,
    kept or dropped by the band)."""
    out: dict[str, dict[str, int]] = {}
    for q in rows:
        if q.pass_rate is not None:
            bucket = f"{round(q.pass_rate * samples)}/{samples}"
            by_source = out.setdefault(q.source, {})
            by_source[bucket] = by_source.get(bucket, 0) + 1
    return out


BAND = ("too_easy", "too_hard", "unsolvable")  # the difficulty band's drop reasons


def charts(report: Stats) -> list[tuple[str, list[Block]]]:
    """The student's pass rates per source, and what the difficulty band dropped."""
    rates = report.get("pass_rates") or {}
    if not rates:
        return []
    blocks: list[Block] = []
    for source, hist in sorted(rates.items()):
        order = sorted(hist, key=lambda b: int(b.split("/")[0]))
        blocks.append(Chart(f"student pass rate, {source}", order, [float(hist[b]) for b in order]))
    drops = report.get("drop_reasons", {})
    band = ", ".join(f"{r} {drops[r]}" for r in BAND if drops.get(r)) or "nothing"
    blocks.append(f"The difficulty band dropped: {band}.")
    return [("Difficulty", blocks)]


def lines(report: Stats) -> list[str]:
    if not report.get("by_source"):
        return []
    kept = ", ".join(f"{s} {c['kept']}/{c['rows']}" for s, c in sorted(report["by_source"].items()))
    return [f"questions kept by source: {kept}; dropped: {tally(report.get('drop_reasons', {}))}"]


def estimate(ctx: Context) -> list[Line]:
    """The teacher confirms written answers; the student's samples measure difficulty; the
    judge settles the unsure near-duplicate pairs (`estimate.unsure_share` of the questions);
    an embedder embeds each question for the duplicate pass."""
    q, a, out = ctx.config.questions, ctx.a, []
    every = ctx.qs.free + ctx.qs.written
    to_confirm = ctx.qs.written + ctx.qs.confirmed_files
    if to_confirm:
        out.append(line("questions", "teacher", to_confirm * q.confirm.solutions,
                        ctx.system + ctx.written_q, a.out("teacher"),
                        ctx.batched["questions"]))  # fmt: skip
    if q.difficulty:
        out.append(line("questions", "student", ctx.kept * q.difficulty.samples,
                        ctx.system + ctx.mean_q, a.out("student"),
                        ctx.batched["questions"]))  # fmt: skip
    if _judges(ctx.config):
        pair = ctx.prompt("same_problem") + 2 * ctx.mean_q
        out.append(line("questions", "judge", every * a.unsure_share, pair, a.out("judge"),
                        ctx.batched["questions"]))  # fmt: skip
    if "embedder" in ctx.config.models:
        out.append(line("questions", "embedder", every, ctx.mean_q, 0, False))
    return out


STAGE = Stage(
    name="questions",
    row_type=Question,
    compute=compute,
    estimate=estimate,
    upstream=(candidates.STAGE.name,),
    build_inputs=(DUPLICATES,),
    sections=("questions", "models", "sim"),
    prompts=prompts,
    roles=roles,
    check=_check,
    funnel="questions",
    preview=("source", "task", "prompt", "reference_answer"),
    accepted=("drop_reason", ""),
    length=("prompt", "question length (characters)", True),
    charts=charts,
    lines=lines,
)
