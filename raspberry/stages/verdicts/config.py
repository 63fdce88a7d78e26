"""The `verdicts:` section: the judge, a second judge and how their scores decide."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from raspberry.llm.config import Transport
from raspberry.section import Section


class VerdictsConfig(Section):
    judge: bool = True
    transport: Transport | None = None  # None: gateway.transport decides
    # A second judge (role second_judge, best from another provider) grades the same answers;
    # "both": each must reach judge_min_score; "mean": the mean of the two must.
    second_judge: bool = False
    judge_policy: Literal["both", "mean"] = "both"
    judge_prompt: str = "judge"
    judge_min_score: float = Field(7.0, ge=0, le=10)
    max_judge_attempts: int = Field(3, ge=1)
