"""The LLM judge: a rubric prompt, reasons before scores, JSON validated and re-asked when invalid.

The response under judgement goes inside <response> tags that the prompt declares to be data, so
instructions written into an answer are not followed by a well-behaved judge.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, Field, ValidationError

from raspberry.llm import Gateway
from raspberry.prompts import Prompt
from raspberry.verify.constraints import RULES_PREFIX


class JudgeScores(BaseModel):
    reasons: str = Field(min_length=1)
    correctness: float = Field(ge=0, le=10)
    completeness: float = Field(ge=0, le=10)
    reasoning: float = Field(ge=0, le=10)
    self_correction: float = Field(ge=0, le=10)
    format: float = Field(ge=0, le=10)
    overall: float = Field(ge=0, le=10)


def parse_scores(text: str) -> JudgeScores | None:
    """The JSON object in the judge's reply (bare or fenced), or None when invalid."""
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return None
    try:
        return JudgeScores.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError):
        return None


def judge_reference(reference: str, verification: str) -> str:
    """What the judge compares against. A rule puzzle has many right answers: the judge is given
    its rules, with the reference as one example, so it does not fail every other right answer."""
    spec = json.loads(verification or "{}")
    if spec.get("kind") != "constraint":
        return reference
    return f"{RULES_PREFIX} {json.dumps(spec['rules'])}\nOne answer that does: {reference}"


def _neutralise(text: str) -> str:
    # An answer cannot close the data block early and speak outside it.
    return text.replace("</response>", "</ response>").replace("<response>", "< response>")


async def judge(
    gw: Gateway,
    prompt: Prompt,
    question: str,
    reference: str,
    response: str,
    max_attempts: int,
    role: str = "judge",
    priority: int = 0,
) -> JudgeScores | None:
    """Scores, or None when the judge never produced valid JSON in max_attempts tries;
    `priority` orders the calls when the gateway's slots are short (see Gateway.chat)."""
    content = prompt.render(question=question, reference=reference, response=_neutralise(response))
    for attempt in range(max_attempts):
        reply = await gw.chat(
            role,
            [{"role": "user", "content": content}],
            prompt_ref=prompt.ref,
            sample_index=attempt,
            priority=priority,
        )
        scores = parse_scores(reply.text)
        if scores is not None:
            return scores
    return None
