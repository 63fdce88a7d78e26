"""The questions of a shard, checked: the duplicate pass's drops applied (unsure pairs as the
judge settles them), then the paid checks: reference answers confirmed by independent teacher
solutions, and the student's pass rate within the band (confirm.py)."""

from __future__ import annotations

from raspberry.build_files.records import Question
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.stages.candidates import evolution, files, synthesis
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.questions.confirm import confirm, difficulty
from raspberry.stages.questions.same_problem import Unsure, settle
from raspberry.verify import has_verifier

# Sources whose reference answers no scorer vouches for.
UNCONFIRMED = {synthesis.SOURCE, evolution.SOURCE}


def needs_confirmation(cfg: QuestionsConfig, q: Question) -> bool:
    return q.source in UNCONFIRMED or (
        q.source == files.SOURCE and files.needs_confirmation(cfg, q)
    )


async def checked(
    gw: Gateway,
    cfg: QuestionsConfig,
    rows: list[Question],
    drops: dict[int, tuple[str, str]],
    teacher: Prompt | None,
    config_hash: str,
    unsure: tuple[dict[int, Unsure], Prompt] | None = None,
) -> list[Question]:
    """The shard's questions: duplicates dropped (unsure ones as the judge says), then
    references confirmed, then difficulty."""
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
