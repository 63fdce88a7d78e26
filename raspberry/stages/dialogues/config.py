"""The `dialogues:` section: how many dialogues per question, how long they may run, and the
prompts and limits of the teacher, the user stand-in and the critic."""

from __future__ import annotations

from pydantic import Field

from raspberry.section import Section


class DialoguesConfig(Section):
    samples_per_question: int = Field(1, ge=1)
    max_turns: int = Field(4, ge=1)
    teacher_prompt: str = "teacher_system"
    user_standin_prompt: str = "user_standin"
    # How often a nudge that gives the answer away is regenerated before a generic one is used.
    max_nudge_attempts: int = Field(3, ge=1)
    # Questions without a programmatic verifier are checked by the judge role with this prompt;
    # an attempt counts as solved when its correctness score reaches the minimum.
    critic_prompt: str = "judge"
    critic_min_correctness: float = Field(7.0, ge=0, le=10)
    max_critic_attempts: int = Field(3, ge=1)
