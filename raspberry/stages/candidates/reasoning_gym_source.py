"""Questions from reasoning-gym generators, with the gold answer and the task's scorer kept.

Each configured task is one dataset seeded from the build's seed and its position in the config,
so the same config always yields the same questions. Shard s of n takes items s, s+n, s+2n, ...
of every task; reasoning-gym builds each item from its own seed, so no shard builds another's.
"""

from __future__ import annotations

import json
from typing import Any

from raspberry.build_files.records import Lineage, Question
from raspberry.errors import ConfigError
from raspberry.stages.candidates.config import QuestionsConfig, ReasoningGymTask
from raspberry.stages.candidates.sources import Source, SourceContext
from raspberry.stages.candidates.text import question_id

SOURCE = "reasoning_gym"


def dataset(spec: ReasoningGymTask, seed: int, size: int) -> Any:
    import reasoning_gym  # imported lazily: it loads 100+ generators

    return reasoning_gym.create_dataset(spec.task, size=size, seed=seed, **spec.params)


def _domain(task: str) -> str:
    """The task's family in reasoning-gym's package layout (arithmetic, games, logic, ...)."""
    from reasoning_gym.factory import DATASETS

    module = DATASETS[task][0].__module__.split(".")
    return module[1] if len(module) > 2 else ""


def validate(cfg: QuestionsConfig) -> None:
    """Fail fast, before any shard runs, on an unknown task or bad task parameters."""
    for i, spec in enumerate(cfg.reasoning_gym):
        try:
            dataset(spec, cfg.seed, 1)[0]
        except Exception as exc:  # reasoning-gym raises many kinds; all mean a bad config entry
            raise ConfigError(
                f"questions.reasoning_gym.{i}: task '{spec.task}' with params {spec.params}: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def to_question(spec: ReasoningGymTask, entry: dict[str, Any], config_hash: str) -> Question:
    """A question row from a reasoning-gym entry, carrying what the task's scorer needs."""
    qid = question_id(entry["question"])
    kept = {"question": entry["question"], "answer": entry["answer"], "metadata": entry["metadata"]}
    return Question(
        id=qid,
        source=SOURCE,
        task=spec.task,
        domain=_domain(spec.task),
        style="procedural",
        difficulty=json.dumps(spec.params, sort_keys=True) if spec.params else "default",
        prompt=entry["question"],
        reference_answer=str(entry["answer"]),
        verification=json.dumps(
            {"kind": "reasoning_gym", "task": spec.task, "entry": kept}, default=str
        ),
        lineage=Lineage(question_id=qid, config_hash=config_hash),
    )


async def generate(ctx: SourceContext) -> list[Question]:
    """This shard's questions of every configured task, in a stable order."""
    out: list[Question] = []
    for position, spec in enumerate(ctx.questions.reasoning_gym):
        entries = dataset(spec, ctx.questions.seed + position, spec.count)
        out += [to_question(spec, entries[i], ctx.config_hash) for i in ctx.items(spec.count)]
    return out


SPEC = Source(
    SOURCE,
    generate,
    enabled=lambda questions: bool(questions.reasoning_gym),
    check=lambda ctx: validate(ctx.questions),
)
