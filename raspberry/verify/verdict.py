"""The verdict on a dialogue: the programmatic check must pass, then the judge must score enough."""

from __future__ import annotations

from raspberry.config import VerdictsConfig
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_counted
from raspberry.prompts import Prompt
from raspberry.records import Dialogue, Lineage, Question, Verdict
from raspberry.verify.checks import check, has_verifier
from raspberry.verify.judge import judge


def transcript(dialogue: Dialogue) -> str:
    """The assistant's attempts, in order: what the judge grades."""
    attempts = [t.content for t in dialogue.turns if t.role == "assistant"]
    return "\n\n--- next attempt ---\n\n".join(attempts)


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
    result = check(question.verification, last) if has_verifier(question.verification) else None
    if not dialogue.solved:
        reasons.append(f"not solved: {dialogue.stop_reason}")
    if result is not None and not result.passed:
        reasons.append(f"programmatic: {result.reason}")
    if result is None and not (cfg.judge and prompt is not None):
        reasons.append("unverified: no programmatic check and the judge is off")
    score: float | None = None
    judge_reasons = ""
    models: list[str] = []
    # The judge costs money: only answers that passed the programmatic check are judged.
    if cfg.judge and prompt is not None and not reasons:
        models.append(gw.model_ref("judge"))
        scores = await judge(
            gw,
            prompt,
            question.prompt,
            question.reference_answer,
            transcript(dialogue),
            cfg.max_judge_attempts,
        )
        if scores is None:
            reasons.append(f"judge: no valid JSON in {cfg.max_judge_attempts} attempts")
        else:
            score, judge_reasons = scores.overall, scores.reasons
            if score < cfg.judge_min_score:
                reasons.append(f"judge: overall {score:g} < {cfg.judge_min_score:g}")
    return Verdict(
        dialogue_id=dialogue.id,
        question_id=question.id,
        accepted=not reasons,
        programmatic_pass=result.passed if result else None,
        programmatic_reason=result.reason if result else "no programmatic check for this question",
        judge_score=score,
        judge_reasons=judge_reasons,
        reject_reasons=reasons,
        lineage=Lineage(
            question_id=question.id,
            stage="verdicts",
            config_hash=config_hash,
            prompts=[prompt.ref] if prompt else [],
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
    return await gather_counted(
        verdict_for(gw, d, questions[d.question_id], cfg, prompt, config_hash) for d in dialogues
    )
