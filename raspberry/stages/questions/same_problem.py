"""The judge's word on an unsure pair of the duplicate pass: the same problem, or not?

The pass (dedup.py) keeps a question it is unsure about and names the earlier question it may
repeat; the questions stage asks the judge role with both questions and their reference answers,
and drops the later one as a paraphrase only when the judge says they are the same problem. A
reply that is not the JSON asked for keeps the question: the pass was unsure, and a judge that
did not answer does not make it sure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from raspberry.build_files.records import Question
from raspberry.llm import Gateway
from raspberry.prompts import Prompt

PLACEHOLDERS = {"question_a", "answer_a", "question_b", "answer_b"}


@dataclass(frozen=True)
class Unsure:
    """An earlier question a candidate may repeat, and why the pass thinks so."""

    other_id: str
    other_prompt: str
    other_answer: str
    evidence: str


def verdict(text: str) -> bool | None:
    """The judge's "same" from its reply, or None for a reply without it."""
    found = re.search(r"\{.*\}", text, re.S)
    try:
        same = json.loads(found.group(0)).get("same") if found else None
    except (json.JSONDecodeError, AttributeError):
        return None
    return same if isinstance(same, bool) else None


async def ask(
    gw: Gateway, prompt: Prompt, first: tuple[str, str], second: tuple[str, str]
) -> bool | None:
    """The judge's verdict on two (question, reference answer) pairs: the same problem?"""
    text = prompt.render(
        question_a=first[0], answer_a=first[1], question_b=second[0], answer_b=second[1]
    )
    reply = await gw.chat("judge", [{"role": "user", "content": text}], prompt_ref=prompt.ref)
    return verdict(reply.text)


async def settle(gw: Gateway, prompt: Prompt, question: Question, pair: Unsure) -> Question:
    """The question, dropped as a paraphrase when the judge says it is the earlier one's problem;
    either way its lineage says what the judge said."""
    same = await ask(
        gw,
        prompt,
        (pair.other_prompt, pair.other_answer),
        (question.prompt, question.reference_answer),
    )
    said = {True: "the same problem", False: "a different problem", None: "no verdict"}[same]
    lineage = question.lineage.model_copy(
        update={
            "steps": [*question.lineage.steps, f"same problem as {pair.other_id}? judge: {said}"],
            "models": sorted({*question.lineage.models, gw.model_ref("judge")}),
        }
    )
    changes: dict[str, object] = {"lineage": lineage}
    if same:
        changes |= {
            "drop_reason": "paraphrase",
            "drop_detail": f"the same problem as {pair.other_id} ({pair.evidence}; the judge "
            "confirmed it)",
        }
    return question.model_copy(update=changes)
