"""The `sft:` section: the rewrite and its checks, and the exports."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from raspberry.llm.config import Transport
from raspberry.section import Section


class PreferenceConfig(Section):
    """Which preference pairs the export makes (sft/preferences.py)."""

    # correction: a wrong attempt of a dialogue against its accepted answer; across_samples: an
    # accepted sample of a question against one that was not accepted (samples_per_question > 1).
    kinds: list[Literal["correction", "across_samples"]] = ["correction", "across_samples"]
    # The chosen side: the exported monologue, or the dialogue's final (verified) attempt.
    chosen: Literal["monologue", "final_attempt"] = "monologue"
    # Which wrong attempts of a corrected dialogue become rejected sides.
    rejected: Literal["first", "last", "every"] = "last"


class ExportConfig(Section):
    # The dataset's licence as the Hub names it (e.g. apache-2.0); None: stated as "other" with
    # a note that the sources' licences apply.
    license: str | None = None
    # none: the response as written; think: reasoning in <think>...</think> before the answer;
    # fields: separate `reasoning` and `answer` fields where the format has room for them.
    reasoning_wrapper: Literal["none", "think", "fields"] = "none"
    # Put a thinking teacher's own thinking at the head of the wrapped reasoning (rows it
    # answered in one turn; a rewrite has it woven in already). Needs a wrapper.
    thinking: bool = False
    validation_share: float = Field(0.05, ge=0, lt=1)
    # Share of self-corrected rows (solved after a nudge) among exported rows; None keeps all.
    self_corrected_share: float | None = Field(None, ge=0, le=1)
    # Token counting for the OpenAI fine-tuning checks (tiktoken-compatible encodings).
    encoding: Literal["o200k_base", "cl100k_base"] = "o200k_base"
    max_tokens_per_example: int = Field(65536, gt=0)
    preference: PreferenceConfig = PreferenceConfig()

    @model_validator(mode="after")
    def _thinking_needs_a_wrapper(self) -> ExportConfig:
        if self.thinking and self.reasoning_wrapper == "none":
            raise ValueError(
                "export.thinking needs a reasoning_wrapper (think or fields) to carry it"
            )
        return self


class SftConfig(Section):
    rewriter_prompt: str = "rewriter"
    transport: Transport | None = None  # None: gateway.transport decides
    min_length_retention: float = Field(0.85, ge=0, le=1)
    max_rewrite_attempts: int = Field(3, ge=1)
    export: ExportConfig = ExportConfig()
