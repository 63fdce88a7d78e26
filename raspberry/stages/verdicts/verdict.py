"""The verdict on a dialogue: the programmatic check must pass, then the judge must score enough."""

from __future__ import annotations

import asyncio

from raspberry.build_files.records import Dialogue, Lineage, Question, Verdict
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.stages.verdicts.config import VerdictsConfig
from raspberry.verify.checks import acheck, has_verifier
from raspberry.verify.judge import JudgeScores, judge, judge_reference


def transcript(dialogue: Dialogue) -> str:
    """The assistant's attempts, in order: what the judge grades."""
    attempts = [t.content for t in dialogue.turns if t.role == "assistant"]
    return "\n\n--- next attempt ---\n\n".join(attempts)


def _judge_rejections(scores: list[JudgeScores | None], cfg: VerdictsConfig) -> list[str]:
    """Why the judges reject (empty when they accept), under the configured policy."""
    names = ["judge", "second judge"]
    invalid = [
        f"{name}: no valid JSON in {cfg.max_judge_attempts} attempts"
        for name, s in zip(names, scores, strict=False)
        if s is None
    ]
    if invalid:
        return invalid
    overall = [s.overall for s in scores if s is not None]
    if cfg.judge_policy == "mean" and len(overall) > 1:
        mean = sum(overall) / len(overall)
        return (
            []
            if mean >= cfg.judge_min_score
            else [f"judges: mean overall {mean:g} < {cfg.judge_min_score:g}"]
        )
    return [
        f"{name}: overall {score:g} < {cfg.judge_min_score:g}"
        for name, score in zip(names, overall, strict=False)
        if score < cfg.judge_min_score
    ]


async def verdict_for(
    gw: Gateway,
    dialogue: Dialogue,
    question: Question,
    cfg: VerdictsConfig,
    prompt: Prompt | None,
    config_hash: str,
) -> Verdict:
    reasons: list[str] = []
    last = next((t.content for t in reversed(dialogue.turns) if t.role == "assistant"), "")
    # None when the question has no programmatic check: then the judge alone decides.
    result = (
        await acheck(question.verification, last) if has_verifier(question.verification) else None
    )
    if not dialogue.solved:
        reasons.append(f"not solved: {dialogue.stop_reason}")
    if result is not None and not result.passed:
        reasons.append(f"programmatic: {result.reason}")
    if result is None and not (cfg.judge and prompt is not None):
        reasons.append("unverified: no programmatic check and the judge is off")
    scores: list[JudgeScores | None] = []
    models: list[str] = []
    # The judges cost money: only answers that passed the programmatic check are judged.
    if cfg.judge and prompt is not None and not reasons:
        roles = ["judge", "second_judge"] if cfg.second_judge else ["judge"]
        models = [gw.model_ref(role) for role in roles]
        reference = judge_reference(question.reference_answer, question.verification)
        args = (question.prompt, reference, transcript(dialogue))
        scores = list(
            await asyncio.gather(
                *(judge(gw, prompt, *args, cfg.max_judge_attempts, role=r) for r in roles)
            )
        )
        reasons += _judge_rejections(scores, cfg)
    first = scores[0] if scores else None
    second = scores[1] if len(scores) > 1 else None
    return Verdict(
        dialogue_id=dialogue.id,
        question_id=question.id,
        accepted=not reasons,
        programmatic_pass=result.passed if result else None,
        programmatic_reason=result.reason if result else "no programmatic check for this question",
        judge_score=first.overall if first else None,
        judge_reasons=first.reasons if first else "",
        second_judge_score=second.overall if second else None,
        second_judge_reasons=second.reasons if second else "",
        reject_reasons=reasons,
        lineage=Lineage(
            question_id=question.id,
            config_hash=config_hash,
            prompts=[prompt.fingerprint] if prompt else [],
            models=models,
        ),
    )


async def run_verdicts(
    gw: Gateway,
    dialogues: list[Dialogue],
    questions: dict[str, Question],
    cfg: VerdictsConfig,
    prompt: Prompt | None,
    config_hash: str,
) -> list[Verdict]:
    return await gather_rows(
        (f"dialogue {d.id}", verdict_for(gw, d, questions[d.question_id], cfg, prompt, config_hash))
        for d in dialogues
    )
