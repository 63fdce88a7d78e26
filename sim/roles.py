"""What each simulated model says. The requested model name selects the role.

All randomness is drawn from a hash of (server seed, request content, sample), so the same request
always gets the same answer, as a cached real model would.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

import numpy as np
from raspberry_sim.embeddings import embed
from raspberry_sim.solvers import solve, wrong_answer
from raspberry_sim.writer import evolver, question_writer

from raspberry.verify.constraints import RULES_PREFIX, broken_rules
from raspberry.verify.extract import extract_final_answer


@dataclass(frozen=True)
class Behaviour:
    seed: int = 0
    wrong_first_prob: float = 0.4
    wrong_retry_prob: float = 0.2


def rng_for(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _section(text: str, tag: str) -> str:
    m = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.S)
    return m.group(1).strip() if m else ""


_HINTS = {
    "basic_arithmetic": "redo the operations one at a time and watch the signs",
    "chain_sum": "add the terms again one by one",
    "letter_counting": "go through the text word by word and recount that letter",
    "word_sorting": "compare the words character by character, uppercase before lowercase",
    "simple_equations": "substitute your value back into the equation and check both sides",
}


def teacher(messages: list[dict[str, str]], sample: int, b: Behaviour) -> str:
    question = messages[0]["content"]
    attempt = 1 + sum(m["role"] == "assistant" for m in messages)
    solution = solve(question)
    if solution is None:
        return "I have worked on this but cannot solve it reliably.\n\nFinal answer: unknown"
    rng = rng_for(b.seed, question, sample, attempt)
    wrong = rng.random() < (b.wrong_first_prob if attempt == 1 else b.wrong_retry_prob)
    opening = (
        "This is a problem to take slowly. Let me work through it step by step."
        if attempt == 1
        else "Let me go back over my work carefully and look for the slip."
    )
    steps = list(solution.steps)
    answer = solution.answer
    if wrong:
        answer = wrong_answer(solution, rng.randrange(1000))
        steps = steps[:-1] + [f"Going quickly through the last step, I get {answer}."]
    body = "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))
    return f"{opening}\n\n{body}\n\nFinal answer: {answer}"


def _reformat(reference: str) -> str:
    """The answer in another surface form: 42 -> 42.0, "a, b" -> "A / B"."""
    try:
        return f"{float(reference):.1f}"
    except ValueError:
        return " / ".join(word.upper() for word in re.split(r",\s*", reference))


def user_standin(prompt: str, leaky: bool, sample: int) -> str:
    question = _section(prompt, "problem")
    solution = solve(question)
    hint = _HINTS.get(solution.family if solution else "", "check each step of your work again")
    if leaky:
        # A stand-in that gives the answer away, verbatim or reformatted, for testing the guard.
        reference = _section(prompt, "correct_answer")
        shown = reference if sample % 2 == 0 else _reformat(reference)
        return f"Close, but not quite. It should come out as {shown}."
    return f"Close, but not quite: {hint}."


def _normalise(answer: str) -> str:
    return re.sub(r"\s+", "", answer).lower()


def judge(prompt: str, harsh: bool = False) -> str:
    """Grades by the final answer; the harsh variant (a second opinion) gives right answers 6."""
    reference = _section(prompt, "reference_answer")
    answer = extract_final_answer(_section(prompt, "response")) or ""
    if reference.startswith(RULES_PREFIX):
        rules = json.loads(reference.removeprefix(RULES_PREFIX).splitlines()[0])
        right = bool(answer) and not broken_rules(answer, rules)
    else:
        right = _normalise(answer) == _normalise(reference)
    score = (6 if harsh else 9) if right else 2
    reasons = (
        "The final answer matches the reference and the steps support it."
        if right
        else f"The final answer {answer!r} does not match the reference."
    )
    return json.dumps(
        {
            "reasons": reasons,
            "correctness": 10 if right else 0,
            "completeness": score,
            "reasoning": score,
            "self_correction": score,
            "format": 10 if answer else 0,
            "overall": score,
        }
    )


def same_problem(prompt: str) -> str:
    """A judge of "the same problem?" that reads the problems as the duplicate pass cannot: the
    same answer, and the same numbers and things asked about, whatever the wording."""
    a, b = _section(prompt, "question_a"), _section(prompt, "question_b")
    same_answer = _normalise(_section(prompt, "answer_a")) == _normalise(
        _section(prompt, "answer_b")
    )
    close = float(np.dot(embed(a), embed(b)))
    same = same_answer and close >= 0.7
    reason = f"answers {'agree' if same_answer else 'differ'}; meaning similarity {close:.2f}"
    return json.dumps({"reason": reason, "same": same})


def rewriter(prompt: str, truncate: bool = False) -> str:
    conversation = _section(prompt, "conversation")
    turns = re.findall(r"<(assistant|user)>\n(.*?)\n</\1>", conversation, re.S)
    parts: list[str] = []
    assistant = [text for role, text in turns if role == "assistant"]
    for i, text in enumerate(assistant):
        if i < len(assistant) - 1:
            # An earlier attempt keeps its reasoning; its answer line becomes a thought.
            text = re.sub(r"Final answer:\s*(.*)$", r"So my answer would be \1.", text.strip())
            parts.append(text + "\n\nWait, that does not look right. Let me check it again.")
        else:
            parts.append(text.strip())
    text = "\n\n".join(parts)
    if not truncate:
        return text
    # The failure seen in hand-made rewrites: less than half of the reasoning kept, answer intact.
    answer = extract_final_answer(assistant[-1]) if assistant else None
    return f"{text[: len(text) * 2 // 5]}\n\nFinal answer: {answer}"


def respond(
    model: str, system: str | None, messages: list[dict[str, str]], sample: int, b: Behaviour
) -> str:
    """The simulated model's reply; KeyError for an unknown model name."""
    last = messages[-1]["content"] if messages else ""
    if model == "sim-teacher":
        return teacher(messages, sample, b)
    if model in ("sim-user-standin", "sim-user-standin-leaky"):
        return user_standin(last, leaky=model.endswith("leaky"), sample=sample)
    if model in ("sim-judge", "sim-judge-harsh"):
        if "<question_a>" in last:
            return same_problem(last)
        return judge(last, harsh=model.endswith("harsh"))
    if model in ("sim-rewriter", "sim-rewriter-truncating"):
        return rewriter(last, truncate=model.endswith("truncating"))
    if model == "sim-question-writer":
        # A re-ask comes as later turns of the same conversation; the task is in the first.
        first = messages[0]["content"] if messages else ""
        if "<operation>" in first:
            return evolver(first, b.seed)
        return question_writer(first, len(messages) > 1, sample, b.seed)
    if model == "sim-student":
        # A student for whom each question has its own difficulty: its chance of a wrong
        # answer is drawn once per question, so pass rates spread over the whole range.
        p = rng_for(b.seed, "student", messages[0]["content"] if messages else "").random()
        return teacher(messages, sample, Behaviour(b.seed, p, p))
    raise KeyError(model)
