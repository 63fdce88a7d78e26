"""What a question source is: one signature for every source, `async generate(ctx:
SourceContext) -> list[Question]` (this shard's share of its questions), and what it declares
beside it (`Source`). The registry of sources is registry.py; docs/extending.md adds one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from raspberry.build_files.records import Lineage, Question
from raspberry.errors import ConfigError
from raspberry.llm import Gateway
from raspberry.prompts import Prompt
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.text import question_id
from raspberry.stages.estimate import Context, Line

S = TypeVar("S", bound=BaseModel)


@dataclass
class SourceContext:
    """What a source knows as it writes one shard's questions."""

    questions: QuestionsConfig  # the `questions:` section
    folder: Path  # where the config's relative paths start
    config_hash: str  # the stage key, recorded in each row's lineage
    shard: int
    # The build's gateway; None where nothing may be paid (the estimate makes the free sources'
    # questions as the build does, without one).
    gateway: Gateway | None = None
    prompts: dict[str, Prompt] = field(default_factory=dict)
    # Input rows a source could not use, "where: why": counted and shown, never silently lost.
    malformed: list[str] = field(default_factory=list)
    name: str = ""  # the source being run

    @property
    def shards(self) -> int:
        return self.questions.shards

    def items(self, count: int) -> range:
        """This shard's share of `count` items: s, s+n, s+2n, ..."""
        return range(self.shard, count, self.shards)

    def settings(self, model: type[S]) -> S:
        """This source's `questions.sources.<name>:` mapping, as its settings model."""
        return _settings(model, self.name, self.questions.sources.get(self.name, {}))

    def question(
        self,
        prompt: str,
        reference_answer: str,
        verification: dict[str, Any],
        *,
        task: str,
        domain: str = "",
        style: str = "",
        difficulty: str = "",
        steps: tuple[str, ...] = (),
    ) -> Question:
        """A question row of this source: its id the hash of the prompt, its lineage begun."""
        qid = question_id(prompt)
        return Question(
            id=qid,
            source=self.name,
            task=task,
            domain=domain,
            style=style,
            difficulty=difficulty,
            prompt=prompt,
            reference_answer=reference_answer,
            verification=json.dumps(verification, sort_keys=True),
            lineage=Lineage(question_id=qid, config_hash=self.config_hash, steps=list(steps)),
        )


def _nothing_to_check(ctx: SourceContext) -> None:
    return None


@dataclass(frozen=True)
class Source:
    name: str  # the rows' `source`, and the key of its settings under questions.sources
    generate: Callable[[SourceContext], Awaitable[list[Question]]]
    # Whether the config asks for it; a source with settings is asked for by its key.
    enabled: Callable[[QuestionsConfig], bool] | None = None
    settings: type[BaseModel] | None = None  # the model of questions.sources.<name>
    # Checks before anything runs (a missing file, a bad task): raise a ConfigError.
    check: Callable[[SourceContext], None] = _nothing_to_check
    # A source that asks a model: the role, its prompts ({key: (file name, placeholders)}),
    # the questions it will write in the whole build and what it will ask (for the estimate,
    # which cannot make its questions without paying).
    role: str | None = None
    prompts: Callable[[QuestionsConfig], dict[str, tuple[str, set[str]]]] = lambda q: {}
    planned: Callable[[QuestionsConfig], int] | None = None
    estimate: Callable[[Context], list[Line]] | None = None

    def asked_for(self, questions: QuestionsConfig) -> bool:
        if self.enabled is not None:
            return self.enabled(questions)
        return self.name in questions.sources


def _settings(model: type[S], name: str, values: Any) -> S:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("questions", "sources", name, *err["loc"]))
        raise ConfigError(f"{where}: {err['msg']}") from None
