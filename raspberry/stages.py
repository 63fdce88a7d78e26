"""One shard of each stage, as plain async Python: the Prefect tasks in tasks/ call these.

Each function takes the config and the shard's input rows and returns the output rows and the
shard's stats (rows in/out, drop reasons, gateway counters, stage report).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from raspberry import questions as question_steps
from raspberry.config import BuildConfig
from raspberry.dialogue import DialoguePrompts, run_dialogues
from raspberry.llm import Gateway
from raspberry.prompts import Prompt, load_prompt
from raspberry.questions import evolution, synthesis
from raspberry.records import Dialogue, Question, SftRow, Verdict
from raspberry.report import drop_counts
from raspberry.sft.rewrite import run_sft
from raspberry.verify.verdict import run_verdicts

Stats = dict[str, Any]
# Shard i of a stage reads shard i of these stages, in this order.
UPSTREAM: dict[str, list[str]] = {
    "candidates": [],
    "questions": ["candidates"],
    "dialogues": ["questions"],
    "verdicts": ["questions", "dialogues"],
    "sft": ["questions", "dialogues", "verdicts"],
}
_PLACEHOLDERS = {
    "question_writer_prompt": synthesis.PLACEHOLDERS,
    "evolver_prompt": evolution.PLACEHOLDERS,
    "teacher_prompt": set(),
    "user_standin_prompt": {"question", "reference", "attempt"},
    "judge_prompt": {"question", "reference", "response"},
    "critic_prompt": {"question", "reference", "response"},
    "rewriter_prompt": {"question", "conversation"},
}


def stage_prompts(config: BuildConfig, stage: str) -> dict[str, Prompt]:
    """The prompts a stage uses, loaded and checked; a missing file is a ConfigError."""
    names: dict[str, str] = {}
    q = config.questions
    if stage == "candidates":
        if q.synthesis:
            names["question_writer_prompt"] = q.synthesis.prompt
        if q.evolution:
            names["evolver_prompt"] = q.evolution.prompt
    elif stage == "questions" and _asks_teacher(config):
        names = {"teacher_prompt": config.dialogues.teacher_prompt}
    elif stage == "dialogues":
        names = {
            "teacher_prompt": config.dialogues.teacher_prompt,
            "user_standin_prompt": config.dialogues.user_standin_prompt,
            "critic_prompt": config.dialogues.critic_prompt,
        }
    elif stage == "verdicts" and config.verdicts.judge:
        names = {"judge_prompt": config.verdicts.judge_prompt}
    elif stage == "sft":
        names = {"rewriter_prompt": config.sft.rewriter_prompt}
    folder = config.prompts_path()
    return {key: load_prompt(folder, name, _PLACEHOLDERS[key]) for key, name in names.items()}


def stage_key(config: BuildConfig, stage: str) -> str:
    """What a stage's output depends on: its config section, models, and prompt texts."""
    refs = sorted(p.fingerprint for p in stage_prompts(config, stage).values())
    return hashlib.sha256(f"{config.stage_hash(stage)}|{refs}".encode()).hexdigest()[:16]


def _asks_teacher(config: BuildConfig) -> bool:
    """Whether the questions stage pays for teacher or student solutions."""
    q = config.questions
    return bool(q.synthesis or q.evolution or q.difficulty or any(f.confirm for f in q.files))


def stage_roles(config: BuildConfig, stage: str) -> list[str]:
    """The model roles a stage sends requests to (their keys must exist before it runs)."""
    q = config.questions
    if stage == "candidates":
        return ["question_writer"] if q.synthesis or q.evolution else []
    if stage == "questions":
        return (["teacher"] if _asks_teacher(config) else []) + (
            ["student"] if q.difficulty else []
        )
    if stage == "dialogues":
        return ["teacher", "user_standin"]
    if stage == "verdicts":
        judges = ["judge", "second_judge"] if config.verdicts.second_judge else ["judge"]
        return judges if config.verdicts.judge else []
    return ["rewriter"]


def _kept(questions: list[Question]) -> list[Question]:
    return [q for q in questions if q.kept]


async def candidates_shard(
    config: BuildConfig, sim_url: str | None, shard: int, *, build_id: str | None = None
) -> tuple[list[Question], Stats]:
    prompts = stage_prompts(config, "candidates")
    async with Gateway(config, sim_url, build_id=build_id) as gw:
        rows, report = await question_steps.candidates(
            gw, config, prompts, stage_key(config, "candidates"), shard
        )
    return rows, {
        "rows_in": len(rows) + report["malformed_rows"],
        "rows_out": len(_kept(rows)),
        "drops": {
            k: n
            for k, n in {
                **report["drop_reasons"],
                "malformed_row": report["malformed_rows"],
            }.items()
            if n
        },
        "report": report,
        **gw.stats.as_dict(),
    }


async def questions_shard(
    config: BuildConfig,
    sim_url: str | None,
    candidates: list[Question],
    duplicates: dict[int, tuple[str, str]],
    *,
    build_id: str | None = None,
) -> tuple[list[Question], Stats]:
    """The shard's candidates with build-wide duplicates dropped and the paid checks done."""
    teacher = stage_prompts(config, "questions").get("teacher_prompt")
    async with Gateway(config, sim_url, build_id=build_id) as gw:
        rows = await question_steps.checked(
            gw, config, candidates, duplicates, teacher, stage_key(config, "questions")
        )
    report = question_steps.funnel(rows)
    # The rows carry the candidates' own drops too: this stage's are those it added.
    earlier = Counter(question_steps.funnel(candidates)["drop_reasons"])
    return rows, {
        "rows_in": len(_kept(candidates)),
        "rows_out": len(_kept(rows)),
        "drops": dict(Counter(report["drop_reasons"]) - earlier),
        "report": report,
        **gw.stats.as_dict(),
    }


def dialogue_prompts(config: BuildConfig) -> DialoguePrompts:
    p = stage_prompts(config, "dialogues")
    return DialoguePrompts(p["teacher_prompt"], p["user_standin_prompt"], p["critic_prompt"])


def dialogue_report(rows: list[Dialogue]) -> Stats:
    """Additive counts: shards' reports are summed, rates derived in raspberry.report."""
    solved = [d for d in rows if d.solved]
    return {
        "dialogues": len(rows),
        "solved": len(solved),
        "turns_to_solve": sum(d.solved_at_turn or 0 for d in solved),
        "solved_at_turn": dict(Counter(str(d.solved_at_turn) for d in solved)),
        "stop_reasons": dict(Counter(d.stop_reason for d in rows)),
        "nudges_rejected": sum(d.nudges_rejected for d in rows),
    }


async def dialogues_shard(
    config: BuildConfig,
    sim_url: str | None,
    questions: list[Question],
    *,
    build_id: str | None = None,
) -> tuple[list[Dialogue], Stats]:
    async with Gateway(config, sim_url, build_id=build_id) as gw:
        rows = await run_dialogues(
            gw,
            _kept(questions),
            config.dialogues,
            dialogue_prompts(config),
            stage_key(config, "dialogues"),
        )
    return rows, {
        "rows_in": len(_kept(questions)),
        "rows_out": len(rows),
        "report": dialogue_report(rows),
        **gw.stats.as_dict(),
    }


async def verdicts_shard(
    config: BuildConfig,
    sim_url: str | None,
    questions: list[Question],
    dialogues: list[Dialogue],
    *,
    build_id: str | None = None,
) -> tuple[list[Verdict], Stats]:
    prompt = stage_prompts(config, "verdicts").get("judge_prompt")
    by_id = {q.id: q for q in _kept(questions)}
    transport = config.verdicts.transport
    async with Gateway(config, sim_url, build_id=build_id, transport=transport) as gw:
        rows = await run_verdicts(
            gw, dialogues, by_id, config.verdicts, prompt, stage_key(config, "verdicts")
        )
    drops = drop_counts(v.reject_reasons for v in rows if not v.accepted)
    return rows, {
        "rows_in": len(dialogues),
        "rows_out": sum(v.accepted for v in rows),
        "drops": drops,
        "report": verdict_report(rows, by_id, config.verdicts.judge_min_score),
        **gw.stats.as_dict(),
    }


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


async def sft_shard(
    config: BuildConfig,
    sim_url: str | None,
    questions: list[Question],
    dialogues: list[Dialogue],
    verdicts: list[Verdict],
    *,
    build_id: str | None = None,
) -> tuple[list[SftRow], Stats]:
    prompt = stage_prompts(config, "sft")["rewriter_prompt"]
    accepted = {v.dialogue_id for v in verdicts if v.accepted}
    chosen = [d for d in dialogues if d.id in accepted]
    transport = config.sft.transport
    async with Gateway(config, sim_url, build_id=build_id, transport=transport) as gw:
        rows, drops = await run_sft(
            gw,
            chosen,
            {q.id: q for q in _kept(questions)},
            config.sft,
            prompt,
            stage_key(config, "sft"),
        )
    # Retention in 0.01 buckets, so shards' reports add up and the median can be read off.
    retention = Counter(f"{r.retention:.2f}" for r in rows if r.retention is not None)
    report = {"rewritten": sum(retention.values()), "retention": dict(retention)}
    return rows, {
        "rows_in": len(chosen),
        "rows_out": len(rows),
        "drops": drops,
        "report": report,
        **gw.stats.as_dict(),
    }
