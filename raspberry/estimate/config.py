"""The `estimate:` section: what a dry run assumes where the config cannot say.

A pilot (`raspberry estimate --pilot N`) measures each of these on N real questions and prints
them, ready to paste here.
"""

from __future__ import annotations

from pydantic import Field

from raspberry.section import Section

# Output tokens per request of each role, for a frontier teacher that thinks at length.
DEFAULT_OUTPUT_TOKENS = {
    "teacher": 1500,
    "student": 1500,
    "user_standin": 80,
    "judge": 300,
    "second_judge": 300,
    "question_writer": 400,
}


class EstimateConfig(Section):
    # Share of dialogues the teacher solves at its first attempt, and the share of the rest it
    # solves at each later attempt after a nudge.
    solved_first_turn: float = Field(0.5, ge=0, le=1)
    solved_later_turn: float = Field(0.5, ge=0, le=1)
    # Share of written questions whose reference answer the teacher's solutions confirm.
    written_kept: float = Field(0.6, ge=0, le=1)
    # Output tokens per request, by role; the rewriter's is derived from the dialogue it rewrites.
    output_tokens: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_OUTPUT_TOKENS))
    # Rewrite length over the dialogue's assistant text (the rewrite keeps every step).
    rewrite_ratio: float = Field(1.1, gt=0)
    # Share of questions in a near-duplicate pair too close to call, which the judge settles.
    unsure_share: float = Field(0.02, ge=0, le=1)
