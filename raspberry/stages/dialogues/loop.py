"""The teacher ↔ user stand-in loop.

Per (question, sample): the teacher answers under a priming system prompt; the question's verifier
decides; when wrong and turns remain, the user stand-in writes a short nudge that must not give the
answer away, and the teacher continues the same conversation. Dialogues of a shard run
concurrently under the gateway's limits; turns within a dialogue are sequential.

Each call asks the gateway for a slot with the number of calls its dialogue has made as priority,
so when slots are short the dialogues that are furthest behind go first: every dialogue starts
early, the ones that turn out long get going early, and the shard does not end with a tail of
long dialogues running one turn at a time (benchmarks/dialogue_schedule_bound.py models this).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from raspberry.build_files.records import Dialogue, Lineage, Question, Turn
from raspberry.errors import ProviderError
from raspberry.llm import MAX_TOKENS, REFUSAL, Completion, ContextLimitError, Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.stages.config import DialoguesConfig
from raspberry.verify import acheck, extract_final_answer, has_verifier
from raspberry.verify.judge import judge

FALLBACK_NUDGE = "That's not quite right. Go back over your work step by step and check each part."


@dataclass(frozen=True)
class DialoguePrompts:
    teacher: Prompt
    user_standin: Prompt
    critic: Prompt


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower())


def leaks_answer(nudge: str, reference: str) -> bool:
    """True when the nudge contains the reference answer: its words in order, or its number."""
    ref = _words(reference)
    if not ref:
        return False
    words = _words(nudge)
    if any(words[i : i + len(ref)] == ref for i in range(len(words) - len(ref) + 1)):
        return True
    try:
        value = float(reference.replace(",", ""))
    except ValueError:
        return False
    return any(_is_number(w) and float(w) == value for w in re.findall(r"-?\d+(?:\.\d+)?", nudge))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def dialogue_id(question_id: str, sample_index: int) -> str:
    return hashlib.sha256(f"{question_id}#{sample_index}".encode()).hexdigest()[:16]


async def _nudge(
    gw: Gateway,
    prompt: Prompt,
    question: Question,
    attempt: str,
    turn: int,
    max_attempts: int,
    priority: int,
) -> tuple[Turn, int, Completion | None]:
    """A nudge that passed the leak guard, how many were rejected, and the accepted reply.

    Sample indices differ per turn: a teacher repeating the same wrong attempt gets a fresh
    nudge, not the cached one again.
    """
    user_msg = prompt.render(
        question=question.prompt, reference=question.reference_answer, attempt=attempt
    )
    for i in range(max_attempts):
        reply = await gw.chat(
            "user_standin",
            [{"role": "user", "content": user_msg}],
            prompt_ref=prompt.ref,
            sample_index=turn * max_attempts + i,
            priority=priority,
        )
        nudge = reply.text.strip()
        if nudge and not leaks_answer(nudge, question.reference_answer):
            return Turn(role="user", content=nudge, tokens=reply.tokens_out), i, reply
    return Turn(role="user", content=FALLBACK_NUDGE, tokens=0), max_attempts, None


async def _is_correct(
    gw: Gateway,
    question: Question,
    text: str,
    critic: Prompt,
    cfg: DialoguesConfig,
    priority: int,
) -> bool:
    """The question's programmatic verifier when it has one, otherwise the LLM critic."""
    if has_verifier(question.verification):
        return (await acheck(question.verification, text)).passed
    if not gw.has_role("judge"):
        raise ProviderError(
            f"question {question.id} has no programmatic verifier: configure models.judge, "
            "which serves as the critic"
        )
    scores = await judge(
        gw,
        critic,
        question.prompt,
        question.reference_answer,
        text,
        cfg.max_critic_attempts,
        priority=priority,
    )
    return scores is not None and scores.correctness >= cfg.critic_min_correctness


async def run_dialogue(
    gw: Gateway,
    question: Question,
    sample_index: int,
    cfg: DialoguesConfig,
    prompts: DialoguePrompts,
    config_hash: str,
) -> Dialogue:
    messages = [{"role": "user", "content": question.prompt}]
    turns = [Turn(role="user", content=question.prompt, tokens=0)]
    tokens_in = tokens_out = tokens_thinking = attempts = rejected = 0
    cost = 0.0
    solved_at: int | None = None
    final: str | None = None
    stop = "turn_limit"
    for turn in range(1, cfg.max_turns + 1):
        try:
            reply = await gw.chat(
                "teacher",
                messages,
                system=prompts.teacher.text,
                prompt_ref=prompts.teacher.ref,
                sample_index=sample_index,
                priority=len(turns) - 1,
            )
        except ContextLimitError:
            stop = "context_limit"
            break
        attempts += 1
        tokens_in, tokens_out = tokens_in + reply.tokens_in, tokens_out + reply.tokens_out
        tokens_thinking += reply.tokens_thinking
        cost += reply.cost_usd
        turns.append(
            Turn(
                role="assistant",
                content=reply.text,
                tokens=reply.tokens_out,
                thinking=reply.thinking,
            )
        )
        messages.append({"role": "assistant", "content": reply.text})
        final = extract_final_answer(reply.text)
        if reply.stop_reason == REFUSAL:
            stop = "refusal"
            break
        if reply.stop_reason == MAX_TOKENS:
            stop = "truncated"
            break
        if await _is_correct(gw, question, reply.text, prompts.critic, cfg, len(turns) - 1):
            solved_at, stop = turn, "solved"
            break
        if turn == cfg.max_turns:
            break
        nudge, n_rejected, nudge_reply = await _nudge(
            gw,
            prompts.user_standin,
            question,
            reply.text,
            turn,
            cfg.max_nudge_attempts,
            len(turns) - 1,
        )
        rejected += n_rejected
        if nudge_reply is not None:
            tokens_in += nudge_reply.tokens_in
            tokens_out += nudge_reply.tokens_out
            cost += nudge_reply.cost_usd
        turns.append(nudge)
        messages.append({"role": "user", "content": nudge.content})
    return Dialogue(
        id=dialogue_id(question.id, sample_index),
        question_id=question.id,
        sample_index=sample_index,
        turns=turns,
        attempts=attempts,
        solved=solved_at is not None,
        solved_at_turn=solved_at,
        stop_reason=stop,
        final_answer=final,
        nudges_rejected=rejected,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_thinking=tokens_thinking,
        cost_usd=cost,
        lineage=Lineage(
            question_id=question.id,
            config_hash=config_hash,
            prompts=[prompts.teacher.fingerprint, prompts.user_standin.fingerprint],
            models=[gw.model_ref("teacher"), gw.model_ref("user_standin")],
        ),
    )


async def run_dialogues(
    gw: Gateway,
    questions: list[Question],
    cfg: DialoguesConfig,
    prompts: DialoguePrompts,
    config_hash: str,
) -> list[Dialogue]:
    """All samples of all questions of a shard, concurrently, in a stable order."""
    jobs = [
        (f"question {q.id} sample {s}", run_dialogue(gw, q, s, cfg, prompts, config_hash))
        for q in questions
        for s in range(cfg.samples_per_question)
    ]
    return await gather_rows(jobs)
