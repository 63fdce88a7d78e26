"""SFT: each accepted dialogue rewritten into one self-correcting monologue; then the exports."""

from __future__ import annotations

from collections import Counter
from typing import Any

from raspberry.build_files.folder import Folder
from raspberry.build_files.manifest import Manifest
from raspberry.build_files.records import Dialogue, Question, SftRow, Verdict
from raspberry.build_files.store import BuildStore
from raspberry.figures import Sample, median_bucket, tally
from raspberry.stages.config import BuildConfig
from raspberry.stages.dialogues import stage as dialogues
from raspberry.stages.estimate import Context, Line, line
from raspberry.stages.questions import stage as questions
from raspberry.stages.sft.card import Made
from raspberry.stages.sft.config import ExportConfig
from raspberry.stages.sft.export import BuildRows, export_rows
from raspberry.stages.sft.rewrite import run_sft
from raspberry.stages.spec import Exports, ShardContext, Stage, Stats
from raspberry.stages.verdicts import stage as verdicts

UPSTREAM = (questions.STAGE, dialogues.STAGE, verdicts.STAGE)


def prompts(config: BuildConfig) -> dict[str, tuple[str, set[str]]]:
    return {"rewriter_prompt": (config.sft.rewriter_prompt, {"question", "conversation"})}


async def compute(
    ctx: ShardContext, questions: list[Question], dialogues: list[Dialogue], verdicts: list[Verdict]
) -> tuple[list[SftRow], Stats]:
    prompt = STAGE.load_prompts(ctx.config)["rewriter_prompt"]
    accepted = {v.dialogue_id for v in verdicts if v.accepted}
    chosen = [d for d in dialogues if d.id in accepted]
    by_id = {q.id: q for q in questions if q.kept}
    async with ctx.gateway(ctx.config.sft.transport) as gw:
        rows, drops = await run_sft(gw, chosen, by_id, ctx.config.sft, prompt, ctx.key)
    # Retention in 0.01 buckets, so shards' reports add up and the median can be read off.
    retention = Counter(f"{r.retention:.2f}" for r in rows if r.retention is not None)
    return rows, {
        "rows_in": len(chosen),
        "rows_out": len(rows),
        "drops": drops,
        "report": {"rewritten": sum(retention.values()), "retention": dict(retention)},
        **gw.stats.as_dict(),
    }


def summarise(report: Stats) -> Stats:
    if not report.get("retention"):
        return report
    rest = {k: v for k, v in report.items() if k != "retention"}
    return {**rest, "median_retention": median_bucket(report["retention"])}


def lines(report: Stats) -> list[str]:
    out = [f"{STAGE.name} drops: {tally(report['drops'])}"] if report.get("drops") else []
    if report.get("rewritten"):
        out.append(
            f"{STAGE.name}: {report['rewritten']} rewritten, median retention "
            f"{report['median_retention']}"
        )
    return out


def load_build(store: BuildStore, manifest: Manifest) -> BuildRows:
    """The rows of every done SFT shard, with the questions, dialogues and verdicts beside them."""
    shards = manifest["stages"].get(STAGE.name, {})
    found: dict[str, list[Any]] = {STAGE.name: [], **{spec.name: [] for spec in UPSTREAM}}
    types = {STAGE.name: STAGE.row_type, **{spec.name: spec.row_type for spec in UPSTREAM}}
    for name in sorted(n for n, entry in shards.items() if entry["state"] == "done"):
        index = int(name.split("-")[1])
        for stage, rows in found.items():
            rows += store.read_shard(stage, index, types[stage])
    return BuildRows(*found.values())


def samples(store: BuildStore, manifest: Manifest) -> list[Sample]:
    """The first exported row solved at the first try and the first self-corrected one (a
    rewritten monologue), each with the dialogue it came from."""
    wanted = {False: "Solved at the first try", True: "Self-corrected"}
    found: list[Sample] = []
    for name, entry in sorted(manifest["stages"].get(STAGE.name, {}).items()):
        if not wanted:
            break
        if entry["state"] != "done":
            continue
        index = int(name.split("-")[1])
        rows = store.read_shard(STAGE.name, index, SftRow)
        by_id = {d.id: d for d in store.read_shard(dialogues.STAGE.name, index, Dialogue)}
        for row in rows:
            if row.rewritten in wanted and row.dialogue_id in by_id:
                turns = [(t.role, t.content) for t in by_id[row.dialogue_id].turns]
                title = wanted.pop(row.rewritten)
                found.append(Sample(title, row.prompt, row.response, turns))
    return found


def export(
    store: BuildStore,
    settings: dict[str, Any],
    folder: Folder,
    build: dict[str, Any],
    formats: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Write a build's export files into folder; return their paths and the export report.
    build: what the card says of the whole build (report.build_facts)."""
    manifest = store.manifest()
    made = Made(
        **build,
        dialogues=dialogues.STAGE.report(manifest),
        verdicts=verdicts.STAGE.report(manifest),
        sft=STAGE.report(manifest),
    )
    written = export_rows(
        load_build(store, manifest),
        ExportConfig.model_validate(settings),
        folder,
        made,
        *([formats] if formats else []),
    )
    for path, text in manifest.get("recipe", {}).items():  # the config and prompts that made it
        folder.write_text(path, text)
    return written


def estimate(ctx: Context) -> list[Line]:
    """Each accepted dialogue that needed more than one attempt is rewritten as a monologue."""
    a = ctx.a
    corrected = ctx.dialogues * (ctx.solved - a.solved_first)
    if corrected <= 0:
        return []
    later = ctx.reach[1:]
    turns = 1 + sum(later) / later[0] if later and later[0] else 1  # given a 2nd turn
    prompt = ctx.prompt(ctx.config.sft.rewriter_prompt) + ctx.mean_q + turns * ctx.step
    rewrite = turns * a.out("teacher") * a.rewrite_ratio
    return [line("sft", "rewriter", corrected, prompt, rewrite, ctx.batched["sft"])]


STAGE = Stage(
    name="sft",
    row_type=SftRow,
    compute=compute,
    estimate=estimate,
    upstream=tuple(spec.name for spec in UPSTREAM),
    sections=("sft", "models", "sim"),
    prompts=prompts,
    roles=lambda config: ["rewriter"],
    funnel="SFT rows",
    preview=("source", "prompt", "response"),
    length=("response", "SFT response length (characters)", False),
    summarise=summarise,
    lines=lines,
    samples=samples,
    exports=Exports(settings=lambda config: config.sft.export.model_dump(), write=export),
)
