"""The question writer's reply: one JSON object, validated, re-asked with the error when invalid.

Synthesis and evolution both ask the question_writer role for this shape.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from raspberry.llm import Gateway
from raspberry.stages.candidates.answers import AnswerType, spec_for, spec_problem
from raspberry.verify.checks import JUDGED


class WrittenQuestion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: str = Field(min_length=1)
    reference_answer: str
    answer_type: AnswerType
    rules: list[dict[str, Any]] = Field(default_factory=list)  # constraint questions only
    how_to_verify: str = ""

    @field_validator("answer_type")
    @classmethod
    def _checkable(cls, answer_type: str) -> str:
        if answer_type == JUDGED:  # a written answer must be checkable without the judge
            raise ValueError(f"answer type {JUDGED!r} cannot be written; pick one that checks")
        return answer_type

    def spec(self) -> dict[str, Any]:
        return spec_for(self.answer_type, self.reference_answer, self.rules)


def parse_written(text: str) -> WrittenQuestion | str:
    """The reply's question, or why it is not one (sent back to the writer)."""
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return "the reply holds no JSON object"
    try:
        written = WrittenQuestion.model_validate(json.loads(match.group(0)))
    except json.JSONDecodeError as exc:
        return f"the JSON is invalid ({exc.msg} at character {exc.pos})"
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"field {'.'.join(map(str, err['loc'])) or '(object)'}: {err['msg']}"
    problem = spec_problem(written.spec(), written.reference_answer)
    return f"{problem}" if problem else written


async def write(
    gw: Gateway, content: str, prompt_ref: str, sample_index: int, max_attempts: int
) -> tuple[WrittenQuestion | str, str, int]:
    """(question or the last error, the last raw reply, attempts); each retry shows the writer
    its error."""
    messages = [{"role": "user", "content": content}]
    result: WrittenQuestion | str = "no reply"
    reply = ""
    for attempt in range(1, max_attempts + 1):
        completion = await gw.chat(
            "question_writer", messages, prompt_ref=prompt_ref, sample_index=sample_index
        )
        reply = completion.text
        result = parse_written(reply)
        if isinstance(result, WrittenQuestion):
            return result, reply, attempt
        messages = [
            *messages,
            {"role": "assistant", "content": reply},
            {
                "role": "user",
                "content": f"That reply cannot be used: {result}. "
                "Reply again with only the corrected JSON object.",
            },
        ]
    return result, reply, max_attempts
