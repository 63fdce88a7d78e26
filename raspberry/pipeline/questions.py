"""Questions: a shard's candidates with the build's duplicates dropped, then the paid checks
(reference answers confirmed by the teacher, difficulty by the student)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from raspberry.config import BuildConfig
from raspberry.errors import StoreError
from raspberry.figures import tally
from raspberry.pipeline import candidates
from raspberry.pipeline.spec import BuildInput, ShardContext, Stage, Stats
from raspberry.questions import steps as question_steps
from raspberry.records import Question
from raspberry.store import BuildStore

# The build-wide duplicate decisions: which candidate rows (shard, row) to drop, and why.
DUPLICATES_SCHEMA = pa.schema(
    [("shard", pa.int32()), ("row", pa.int64()), ("reason", pa.string()), ("detail", pa.string())]
)


def read_duplicates(table: pa.Table, shard: int) -> dict[int, tuple[str, str]]:
    """row -> (reason, detail) for one shard's candidates."""
    mine = table.filter(pc.equal(table["shard"], shard))
    return {r["row"]: (r["reason"], r["detail"]) for r in mine.to_pylist()}


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
    compute=lambda config, shards, earlier: question_steps.duplicates(
        config.questions, shards, earlier
    ),
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
    if not _asks_teacher(config):
        return {}
    return {"teacher_prompt": (config.dialogues.teacher_prompt, set())}


def roles(config: BuildConfig) -> list[str]:
    q = config.questions
    return (["teacher"] if _asks_teacher(config) else []) + (["student"] if q.difficulty else [])


async def compute(
    ctx: ShardContext, candidates: list[Question], duplicates: dict[int, tuple[str, str]]
) -> tuple[list[Question], Stats]:
    teacher = STAGE.load_prompts(ctx.config).get("teacher_prompt")
    async with ctx.gateway() as gw:
        rows = await question_steps.checked(
            gw, ctx.config, candidates, duplicates, teacher, ctx.key
        )
    report = question_steps.funnel(rows)
    # The rows carry the candidates' own drops too: this stage's are those it added.
    earlier = Counter(question_steps.funnel(candidates)["drop_reasons"])
    return rows, {
        "rows_in": sum(q.kept for q in candidates),
        "rows_out": sum(q.kept for q in rows),
        "drops": dict(Counter(report["drop_reasons"]) - earlier),
        "report": report,
        **gw.stats.as_dict(),
    }


def lines(report: Stats) -> list[str]:
    if not report.get("by_source"):
        return []
    kept = ", ".join(f"{s} {c['kept']}/{c['rows']}" for s, c in sorted(report["by_source"].items()))
    return [f"questions kept by source: {kept}; dropped: {tally(report.get('drop_reasons', {}))}"]


STAGE = Stage(
    name="questions",
    row_type=Question,
    compute=compute,
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
    lines=lines,
)
