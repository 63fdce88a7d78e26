"""The row of each stage, as a pydantic model, and its Arrow schema.

Every row carries its lineage: the question it came from, the hash of the stage config that made
it, the prompts (id@version) and models it used.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lineage(Row):
    question_id: str
    stage: str
    config_hash: str
    prompts: list[str] = []
    models: list[str] = []
    # What happened to the row on its way, in order (e.g. "evolve add_steps of 3f2a...").
    steps: list[str] = []


class Question(Row):
    id: str  # content hash of the prompt
    source: str  # reasoning_gym, synthesis, evolution or files
    task: str  # reasoning-gym task, written style, or file name: questions of one template
    domain: str = ""
    style: str = ""
    difficulty: str = ""
    prompt: str
    reference_answer: str
    # JSON object: {"kind": ..., parameters}; see raspberry.verify.
    verification: str
    # The question an evolved one descends from (first generation); empty for an original.
    root_id: str = ""
    # Share of the student's tries that passed; None when not measured.
    pass_rate: float | None = None
    # Empty for a kept question; otherwise why it was dropped, and the particulars.
    drop_reason: str = ""
    drop_detail: str = ""
    lineage: Lineage

    @property
    def kept(self) -> bool:
        return not self.drop_reason


class Turn(Row):
    role: str  # "user" (question or nudge) or "assistant"
    content: str
    tokens: int


class Dialogue(Row):
    id: str
    question_id: str
    sample_index: int
    turns: list[Turn]
    attempts: int
    solved: bool
    solved_at_turn: int | None
    # solved, turn_limit, refusal, truncated, context_limit
    stop_reason: str
    final_answer: str | None
    nudges_rejected: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    lineage: Lineage


class Verdict(Row):
    dialogue_id: str
    question_id: str
    accepted: bool
    programmatic_pass: bool | None  # None: the question has no programmatic check
    programmatic_reason: str
    judge_score: float | None
    judge_reasons: str
    second_judge_score: float | None = None  # None: no second judge ran
    second_judge_reasons: str = ""
    reject_reasons: list[str]
    lineage: Lineage


class SftRow(Row):
    id: str
    question_id: str
    dialogue_id: str
    source: str
    prompt: str
    response: str
    rewritten: bool
    # Characters of reasoning kept / the assistant's original characters; None when not rewritten.
    retention: float | None
    lineage: Lineage


class EvalRow(Row):
    """One answer of one model to one benchmark question in one run."""

    run: int
    model: str
    model_ref: str
    question_id: str
    reference: str
    response: str
    correct: bool
    reason: str
    tokens_out: int


_LINEAGE = pa.struct(
    [
        ("question_id", pa.string()),
        ("stage", pa.string()),
        ("config_hash", pa.string()),
        ("prompts", pa.list_(pa.string())),
        ("models", pa.list_(pa.string())),
        ("steps", pa.list_(pa.string())),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "questions": pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("task", pa.string()),
            ("domain", pa.string()),
            ("style", pa.string()),
            ("difficulty", pa.string()),
            ("prompt", pa.string()),
            ("reference_answer", pa.string()),
            ("verification", pa.string()),
            ("root_id", pa.string()),
            ("pass_rate", pa.float64()),
            ("drop_reason", pa.string()),
            ("drop_detail", pa.string()),
            ("lineage", _LINEAGE),
        ]
    ),
    "dialogues": pa.schema(
        [
            ("id", pa.string()),
            ("question_id", pa.string()),
            ("sample_index", pa.int32()),
            (
                "turns",
                pa.list_(
                    pa.struct(
                        [("role", pa.string()), ("content", pa.string()), ("tokens", pa.int64())]
                    )
                ),
            ),
            ("attempts", pa.int32()),
            ("solved", pa.bool_()),
            ("solved_at_turn", pa.int32()),
            ("stop_reason", pa.string()),
            ("final_answer", pa.string()),
            ("nudges_rejected", pa.int32()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("cost_usd", pa.float64()),
            ("lineage", _LINEAGE),
        ]
    ),
    "verdicts": pa.schema(
        [
            ("dialogue_id", pa.string()),
            ("question_id", pa.string()),
            ("accepted", pa.bool_()),
            ("programmatic_pass", pa.bool_()),
            ("programmatic_reason", pa.string()),
            ("judge_score", pa.float64()),
            ("judge_reasons", pa.string()),
            ("second_judge_score", pa.float64()),
            ("second_judge_reasons", pa.string()),
            ("reject_reasons", pa.list_(pa.string())),
            ("lineage", _LINEAGE),
        ]
    ),
    "sft": pa.schema(
        [
            ("id", pa.string()),
            ("question_id", pa.string()),
            ("dialogue_id", pa.string()),
            ("source", pa.string()),
            ("prompt", pa.string()),
            ("response", pa.string()),
            ("rewritten", pa.bool_()),
            ("retention", pa.float64()),
            ("lineage", _LINEAGE),
        ]
    ),
}

SCHEMAS["evals"] = pa.schema(
    [
        ("run", pa.int32()),
        ("model", pa.string()),
        ("model_ref", pa.string()),
        ("question_id", pa.string()),
        ("reference", pa.string()),
        ("response", pa.string()),
        ("correct", pa.bool_()),
        ("reason", pa.string()),
        ("tokens_out", pa.int64()),
    ]
)

# Candidates are questions before the build-wide duplicate pass and the paid checks.
SCHEMAS["candidates"] = SCHEMAS["questions"]

ROW_TYPES: dict[str, type[Row]] = {
    "candidates": Question,
    "questions": Question,
    "dialogues": Dialogue,
    "verdicts": Verdict,
    "sft": SftRow,
    "evals": EvalRow,
}
# The build's stages, in order; "evals" is a table of its own, not a stage.
STAGES: tuple[str, ...] = ("candidates", "questions", "dialogues", "verdicts", "sft")


def to_table(stage: str, rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist([r.model_dump() for r in rows], schema=SCHEMAS[stage])


def from_table(stage: str, table: pa.Table) -> list[Any]:
    row_type = ROW_TYPES[stage]
    return [row_type.model_validate(d) for d in table.to_pylist()]
