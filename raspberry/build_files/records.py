"""The rows a build stores, as pydantic models; their Arrow schemas are derived from them.

Every row carries its lineage: the question it came from, the stage and the hash of the stage
config that made it, the prompts (id@version#text hash) and models it used.
"""

from __future__ import annotations

from functools import cache
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, model_validator

# An int stored as a 32-bit column (counts that never need more).
Int32 = Annotated[int, "int32"]


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _columns_added_later(cls, data: Any) -> Any:
        """A shard written before a field existed reads that column as null: its default
        stands in."""
        if not isinstance(data, dict):
            return data
        later = _defaulted(cls)
        return {k: v for k, v in data.items() if v is not None or k not in later}


R = TypeVar("R", bound=Row)


@cache
def _defaulted(row_type: type[Row]) -> frozenset[str]:
    """Fields with a default other than None."""
    return frozenset(
        name
        for name, f in row_type.model_fields.items()
        if not f.is_required() and f.default is not None
    )


class Lineage(Row):
    question_id: str
    stage: str = ""  # the stage that wrote the row (set when its shard is written)
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
    thinking: str = ""  # a thinking teacher's own reasoning before this answer


class Dialogue(Row):
    id: str
    question_id: str
    sample_index: Int32
    turns: list[Turn]
    attempts: Int32
    solved: bool
    solved_at_turn: Int32 | None
    # solved, turn_limit, refusal, truncated, context_limit
    stop_reason: str
    final_answer: str | None
    nudges_rejected: Int32
    tokens_in: int
    tokens_out: int
    cost_usd: float
    lineage: Lineage
    tokens_thinking: int = 0  # of tokens_out, the teacher's thinking


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
    # The teacher's own thinking behind a response it wrote in one turn (a rewrite has it woven
    # in); the export's reasoning wrapper carries it when sft.export.thinking is on.
    thinking: str = ""
    # The teacher's attempt that solved the dialogue (1: the first); 0 in shards written before.
    turns: Int32 = 0


class EvalRow(Row):
    """One answer of one model to one benchmark question in one run."""

    run: Int32
    model: str
    model_ref: str
    question_id: str
    reference: str
    response: str
    correct: bool
    reason: str
    tokens_out: int
    group: str = ""  # the question's task or source
    readable: bool = True  # the verifier found an answer in the response (format compliance)


def _arrow(annotation: Any) -> pa.DataType:
    """The Arrow type of a field's annotation (optional fields are nullable columns)."""
    if get_origin(annotation) is Annotated:
        kind, *marks = get_args(annotation)
        return pa.int32() if "int32" in marks else _arrow(kind)
    if get_origin(annotation) in (Union, UnionType):
        (kind,) = [a for a in get_args(annotation) if a is not type(None)]
        return _arrow(kind)
    if get_origin(annotation) is list:
        return pa.list_(_arrow(get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, Row):
        return pa.struct(_fields(annotation))
    return _SCALARS[annotation]


_SCALARS = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _fields(row_type: type[Row]) -> list[tuple[str, pa.DataType]]:
    hints = get_type_hints(row_type, include_extras=True)
    return [(name, _arrow(hints[name])) for name in row_type.model_fields]


@cache
def schema(row_type: type[Row]) -> pa.Schema:
    """A row type's Arrow schema, derived from its fields in their order."""
    return pa.schema(_fields(row_type))


def to_table(rows: list[Row], row_type: type[Row]) -> pa.Table:
    return pa.Table.from_pylist([r.model_dump() for r in rows], schema=schema(row_type))


def from_table(table: pa.Table, row_type: type[R]) -> list[R]:
    return [row_type.model_validate(d) for d in table.to_pylist()]
