"""Turn an accepted dialogue into one self-correcting monologue, checked before it is kept.

A dialogue solved at the first turn needs no rewrite: its one answer is the response. Otherwise
the rewriter is asked up to max_rewrite_attempts times; the first rewrite passing every check is
kept, and when none does the dialogue is rejected with the last reasons.
"""

from __future__ import annotations

import hashlib

from raspberry.build_files.records import Dialogue, Lineage, Question, SftRow, Turn
from raspberry.figures import drop_counts
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.stages.sft.checks import check_rewrite, retention
from raspberry.stages.sft.config import SftConfig


def conversation_text(dialogue: Dialogue) -> str:
    """The turns after the question, tagged by role, as the rewriter prompt expects; a thinking
    teacher's own reasoning opens its turn in <thinking> tags, for the rewrite to keep."""

    def body(t: Turn) -> str:
        return f"<thinking>\n{t.thinking}\n</thinking>\n{t.content}" if t.thinking else t.content

    return "\n".join(f"<{t.role}>\n{body(t)}\n</{t.role}>" for t in dialogue.turns[1:])


def _row(
    dialogue: Dialogue,
    question: Question,
    response: str,
    rewritten: bool,
    kept: float | None,
    lineage: Lineage,
    thinking: str = "",
) -> SftRow:
    return SftRow(
        id=hashlib.sha256(f"sft:{dialogue.id}".encode()).hexdigest()[:16],
        question_id=question.id,
        dialogue_id=dialogue.id,
        source=question.source,
        prompt=question.prompt,
        response=response,
        rewritten=rewritten,
        retention=kept,
        lineage=lineage,
        thinking=thinking,
        turns=dialogue.solved_at_turn or dialogue.attempts,
    )


async def to_sft(
    gw: Gateway,
    dialogue: Dialogue,
    question: Question,
    cfg: SftConfig,
    prompt: Prompt,
    config_hash: str,
) -> tuple[SftRow | None, list[str]]:
    """The SFT row, or None with the reasons the last rewrite failed."""
    if dialogue.attempts == 1:
        turn = next(t for t in dialogue.turns if t.role == "assistant")
        lineage = Lineage(question_id=question.id, config_hash=config_hash)
        return _row(dialogue, question, turn.content, False, None, lineage, turn.thinking), []
    content = prompt.render(question=question.prompt, conversation=conversation_text(dialogue))
    lineage = Lineage(
        question_id=question.id,
        config_hash=config_hash,
        prompts=[prompt.fingerprint],
        models=[gw.model_ref("rewriter")],
    )
    failures: list[str] = []
    for attempt in range(cfg.max_rewrite_attempts):
        reply = await gw.chat(
            "rewriter",
            [{"role": "user", "content": content}],
            prompt_ref=prompt.ref,
            sample_index=attempt,
        )
        monologue = reply.text.strip()
        failures = check_rewrite(
            monologue, dialogue, question.verification, cfg.min_length_retention
        )
        if not failures:
            return _row(
                dialogue, question, monologue, True, retention(monologue, dialogue), lineage
            ), []
    return None, failures


async def run_sft(
    gw: Gateway,
    dialogues: list[Dialogue],
    questions: dict[str, Question],
    cfg: SftConfig,
    prompt: Prompt,
    config_hash: str,
) -> tuple[list[SftRow], dict[str, int]]:
    """SFT rows of the accepted dialogues, and a count of rejected rewrites per first reason."""
    results = await gather_rows(
        (f"dialogue {d.id}", to_sft(gw, d, questions[d.question_id], cfg, prompt, config_hash))
        for d in dialogues
    )
    rows = [row for row, _ in results if row is not None]
    return rows, drop_counts(reasons for row, reasons in results if row is None)
