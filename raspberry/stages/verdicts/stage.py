"""Verdicts: programmatic checks, then the LLM judge, on every dialogue of a shard."""

from __future__ import annotations

from collections import Counter

from raspberry.build_files.records import Dialogue, Question, Verdict
from raspberry.figures import drop_counts, tally
from raspberry.stages.config import BuildConfig
from raspberry.stages.dialogues import stage as dialogues
from raspberry.stages.estimate import Context, Line, line
from raspberry.stages.questions import stage as questions
from raspberry.stages.spec import ShardContext, Stage, Stats
from raspberry.stages.verdicts.verdict import run_verdicts


def prompts(config: BuildConfig) -> dict[str, tuple[str, set[str]]]:
    if not config.verdicts.judge:
        return {}
    return {"judge_prompt": (config.verdicts.judge_prompt, {"question", "reference", "response"})}


def roles(config: BuildConfig) -> list[str]:
    v = config.verdicts
    return (["judge", "second_judge"] if v.second_judge else ["judge"]) if v.judge else []


def verdict_report(rows: list[Verdict], questions: dict[str, Question], min_score: float) -> Stats:
    """Additive counts: the funnel by source, and how often the checks agreed where both ran."""
    by_source: dict[str, dict[str, int]] = {}
    for v in rows:
        entry = by_source.setdefault(questions[v.question_id].source, {"in": 0, "accepted": 0})
        entry["in"] += 1
        entry["accepted"] += v.accepted
    programmatic = Counter(
        "none" if v.programmatic_pass is None else "passed" if v.programmatic_pass else "failed"
        for v in rows
    )
    judged = [v for v in rows if v.judge_score is not None]
    both_judges = [v for v in judged if v.second_judge_score is not None]
    return {
        "by_source": by_source,
        "programmatic": dict(programmatic),
        # The judge grades only answers the programmatic check passed: agreement is its pass rate.
        "judge_vs_programmatic": {
            "both_ran": sum(v.programmatic_pass is True for v in judged),
            "agree": sum(
                v.programmatic_pass is True and (v.judge_score or 0) >= min_score for v in judged
            ),
        },
        "judges": {
            "both_ran": len(both_judges),
            "agree": sum(
                ((v.judge_score or 0) >= min_score) == ((v.second_judge_score or 0) >= min_score)
                for v in both_judges
            ),
        },
    }


async def compute(
    ctx: ShardContext, questions: list[Question], dialogues: list[Dialogue]
) -> tuple[list[Verdict], Stats]:
    cfg = ctx.config.verdicts
    prompt = STAGE.load_prompts(ctx.config).get("judge_prompt")
    by_id = {q.id: q for q in questions if q.kept}
    async with ctx.gateway(cfg.transport) as gw:
        rows = await run_verdicts(gw, dialogues, by_id, cfg, prompt, ctx.key)
    return rows, {
        "rows_in": len(dialogues),
        "rows_out": sum(v.accepted for v in rows),
        "drops": drop_counts(v.reject_reasons for v in rows if not v.accepted),
        "report": verdict_report(rows, by_id, cfg.judge_min_score),
        **gw.stats.as_dict(),
    }


def lines(report: Stats) -> list[str]:
    out = []
    if report.get("programmatic"):
        jp, jj = report["judge_vs_programmatic"], report["judges"]
        out.append(
            f"verification: programmatic {tally(report['programmatic'])}; the judge agreed with a "
            f"programmatic pass {jp['agree']}/{jp['both_ran']}"
            + (f"; the two judges agreed {jj['agree']}/{jj['both_ran']}" if jj["both_ran"] else "")
        )
        out += [
            f"  {source}: {counts['in']} → {counts['accepted']} accepted"
            for source, counts in sorted(report["by_source"].items())
        ]
    if report.get("drops"):
        out.append(f"{STAGE.name} drops: {tally(report['drops'])}")
    return out


def estimate(ctx: Context) -> list[Line]:
    """The judge (and a second judge) grade each dialogue's final answer."""
    config = ctx.config
    if not config.verdicts.judge:
        return []
    prompt = ctx.prompt(config.verdicts.judge_prompt) + ctx.mean_q + ctx.reference
    roles = ["judge"] + (["second_judge"] if config.verdicts.second_judge else [])
    return [
        line(
            "verdicts",
            role,
            ctx.dialogues,
            prompt + ctx.a.out("teacher"),
            ctx.a.out(role),
            ctx.batched["verdicts"],
        )  # fmt: skip
        for role in roles
    ]


STAGE = Stage(
    name="verdicts",
    row_type=Verdict,
    compute=compute,
    estimate=estimate,
    upstream=(questions.STAGE.name, dialogues.STAGE.name),
    sections=("verdicts", "models", "sim"),
    prompts=prompts,
    roles=roles,
    funnel="accepted",
    preview=("dialogue_id", "programmatic_pass", "judge_score", "judge_reasons"),
    accepted=("accepted", True),
    lines=lines,
)
