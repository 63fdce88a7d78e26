"""Candidates: every question source of a shard, screened (format, decontamination)."""

from __future__ import annotations

from pathlib import Path

from raspberry.build_files.records import Question
from raspberry.stages.candidates import evolution, registry, screening
from raspberry.stages.candidates.files import file_path
from raspberry.stages.config import BuildConfig
from raspberry.stages.estimate import Context, Line, line
from raspberry.stages.spec import ShardContext, Stage, Stats


def prompts(config: BuildConfig) -> dict[str, tuple[str, set[str]]]:
    q = config.questions
    found = {key: p for s in registry.asked_for(q) for key, p in s.prompts(q).items()}
    if q.evolution:
        found["evolver_prompt"] = (q.evolution.prompt, evolution.PLACEHOLDERS)
    return found


def files(config: BuildConfig) -> list[Path]:
    """The question files and the benchmark files decontamination reads."""
    folder = Path(config.source).parent
    q = config.questions
    return [file_path(f, folder) for f in q.files] + [
        (folder / p).resolve() for p in q.filters.decontamination.benchmarks
    ]


def roles(config: BuildConfig) -> list[str]:
    q = config.questions
    asked = {s.role for s in registry.asked_for(q) if s.role} | (
        {"question_writer"} if q.evolution else set()
    )
    writes = sorted(asked)
    # Embeddings compare prose with the benchmark files (decontamination.py).
    embeds = (
        ["embedder"] if "embedder" in config.models and q.filters.decontamination.benchmarks else []
    )
    return writes + embeds


async def compute(ctx: ShardContext) -> tuple[list[Question], Stats]:
    async with ctx.gateway() as gw:
        rows, report = await screening.candidates(
            gw, ctx.config.questions, Path(ctx.config.source).parent,
            STAGE.load_prompts(ctx.config), ctx.key, ctx.shard,
        )  # fmt: skip
    drops = {**report["drop_reasons"], "malformed_row": report["malformed_rows"]}
    return rows, {
        "rows_in": len(rows) + report["malformed_rows"],
        "rows_out": sum(q.kept for q in rows),
        "drops": {k: n for k, n in drops.items() if n},
        "report": report,
        **gw.stats.as_dict(),
    }


def lines(report: Stats) -> list[str]:
    if not report.get("malformed"):
        return []
    return [
        f"question files: {report['malformed_rows']} malformed rows left out, "
        f"e.g. {report['malformed'][0]}"
    ]


def estimate(ctx: Context) -> list[Line]:
    """What each source that asks a model asks (synthesis: one question_writer request per
    written question), one question_writer request per evolution; with an embedder,
    an embedding of each written question and each benchmark question (decontamination)."""
    q, a = ctx.config.questions, ctx.a
    out = [line for s in registry.asked_for(q) if s.estimate for line in s.estimate(ctx)]
    if q.evolution:
        eligible = (ctx.qs.written if "synthesis" in q.evolution.sources else 0) + (
            ctx.qs.confirmed_files if "files" in q.evolution.sources else 0
        )
        n = eligible * q.evolution.share * q.evolution.rounds
        prompt = ctx.prompt(q.evolution.prompt) + ctx.written_q + ctx.reference + 30
        out.append(line("candidates", "question_writer", n, prompt, a.out("question_writer"),
                        ctx.batched["candidates"]))  # fmt: skip
    if "embedder" in roles(ctx.config):
        n = ctx.qs.written + ctx.qs.benchmark_items
        out.append(line("candidates", "embedder", n, ctx.written_q, 0, False))
    return out


STAGE = Stage(
    name="candidates",
    row_type=Question,
    compute=compute,
    estimate=estimate,
    sections=("questions", "models", "sim"),
    prompts=prompts,
    roles=roles,
    files=files,
    check=lambda config, output_dir: screening.validate(
        config.questions, Path(config.source).parent
    ),
    funnel="candidates",
    preview=("source", "task", "prompt", "reference_answer"),
    accepted=("drop_reason", ""),
    lines=lines,
)
