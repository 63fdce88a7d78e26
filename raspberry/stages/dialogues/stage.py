"""Dialogues: the teacher and the user stand-in on each kept question until it is solved."""

from __future__ import annotations

from collections import Counter

from raspberry.build_files.records import Dialogue, Question
from raspberry.figures import Block, Chart, tally
from raspberry.stages.config import BuildConfig
from raspberry.stages.dialogues.loop import DialoguePrompts, run_dialogues
from raspberry.stages.estimate import Context, Line, line, prompt_cache
from raspberry.stages.questions import stage as questions
from raspberry.stages.spec import ShardContext, Stage, Stats


def prompts(config: BuildConfig) -> dict[str, tuple[str, set[str]]]:
    d = config.dialogues
    return {
        "teacher_prompt": (d.teacher_prompt, set()),
        "user_standin_prompt": (d.user_standin_prompt, {"question", "reference", "attempt"}),
        "critic_prompt": (d.critic_prompt, {"question", "reference", "response"}),
    }


def dialogue_prompts(config: BuildConfig) -> DialoguePrompts:
    p = STAGE.load_prompts(config)
    return DialoguePrompts(p["teacher_prompt"], p["user_standin_prompt"], p["critic_prompt"])


def dialogue_report(rows: list[Dialogue]) -> Stats:
    """Additive counts: shards' reports are summed, rates derived by summarise."""
    solved = [d for d in rows if d.solved]
    return {
        "dialogues": len(rows),
        "solved": len(solved),
        "turns_to_solve": sum(d.solved_at_turn or 0 for d in solved),
        "solved_at_turn": dict(Counter(str(d.solved_at_turn) for d in solved)),
        "stop_reasons": dict(Counter(d.stop_reason for d in rows)),
        "nudges_rejected": sum(d.nudges_rejected for d in rows),
    }


async def compute(ctx: ShardContext, questions: list[Question]) -> tuple[list[Dialogue], Stats]:
    kept = [q for q in questions if q.kept]
    async with ctx.gateway(converses=True) as gw:
        rows = await run_dialogues(
            gw, kept, ctx.config.dialogues, dialogue_prompts(ctx.config), ctx.key
        )
    return rows, {
        "rows_in": len(kept),
        "rows_out": len(rows),
        "report": dialogue_report(rows),
        **gw.stats.as_dict(),
    }


def summarise(report: Stats) -> Stats:
    if not report.get("dialogues"):
        return report
    solved = report.get("solved", 0)
    return {
        **report,
        "mean_turns_to_solve": round(report["turns_to_solve"] / solved, 3) if solved else None,
        "give_up_rate": round(1 - solved / report["dialogues"], 4),
        "solved_at_turn": dict(sorted(report.get("solved_at_turn", {}).items())),
    }


def lines(report: Stats) -> list[str]:
    if not report.get("dialogues"):
        return []
    return [
        f"dialogues: solved at {tally(report['solved_at_turn'], 'turn {}:')}; mean turns to "
        f"solve {report['mean_turns_to_solve']}, give-up rate {report['give_up_rate']:.1%}; "
        f"stopped: {tally(report['stop_reasons'])}; nudges rejected {report['nudges_rejected']}"
    ]


def charts(report: Stats) -> list[tuple[str, list[Block]]]:
    turns = dict(report.get("solved_at_turn", {}))
    unsolved = report.get("dialogues", 0) - report.get("solved", 0)
    chart = Chart(
        "dialogues",
        [f"solved at turn {t}" for t in turns] + ["not solved"],
        [float(c) for c in turns.values()] + [float(unsolved)],
    )
    mean, give_up = report.get("mean_turns_to_solve"), report.get("give_up_rate")
    note = (
        f"mean turns to solve: {mean}; give-up rate: {give_up:.1%}"
        if give_up is not None
        else "no dialogue yet"
    )
    return [("Turns to correct", [chart, note])]


def estimate(ctx: Context) -> list[Line]:
    """Turn k's prompt is the system prompt, the question and k-1 attempts and nudges; the
    critic checks each attempt of a question without a verifier."""
    config, a = ctx.config, ctx.a
    d = config.dialogues
    teacher = Line("dialogues", "teacher")
    nudger = Line("dialogues", "user_standin")
    nudge_prompt = ctx.prompt(d.user_standin_prompt)
    cache = prompt_cache(config)
    for k, p in enumerate(ctx.reach, 1):
        n = ctx.dialogues * p
        prompt = ctx.system + ctx.mean_q + (k - 1) * ctx.step
        read, written = cache.turn(k, ctx.system, prompt, prompt - ctx.step)
        teacher.requests += n
        teacher.tokens_in += n * prompt
        teacher.tokens_cache_read += n * read
        teacher.tokens_cache_write += n * written
        if k > 1:
            nudger.requests += n
            nudger.tokens_in += n * (nudge_prompt + ctx.mean_q + ctx.reference + a.out("teacher"))
    teacher.tokens_out = teacher.requests * a.out("teacher")
    nudger.tokens_out = nudger.requests * a.out("user_standin")
    out = [teacher, nudger]
    unverified = ctx.qs.free_unverified * d.samples_per_question
    if unverified:
        critic = ctx.prompt(d.critic_prompt) + ctx.mean_q + ctx.reference + a.out("teacher")
        out.append(line("dialogues", "judge", unverified * sum(ctx.reach), critic,
                        a.out("judge"), False))  # fmt: skip
    return out


STAGE = Stage(
    name="dialogues",
    row_type=Dialogue,
    compute=compute,
    estimate=estimate,
    upstream=(questions.STAGE.name,),
    sections=("dialogues", "models", "sim"),
    prompts=prompts,
    roles=lambda config: ["teacher", "user_standin"],
    funnel="dialogues",
    preview=("question_id", "sample_index", "solved_at_turn", "stop_reason", "final_answer"),
    accepted=("solved", True),
    length=("tokens_out", "teacher output per dialogue (tokens)", False),
    charts=charts,
    summarise=summarise,
    lines=lines,
)
