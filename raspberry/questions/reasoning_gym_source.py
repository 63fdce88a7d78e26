"""Questions from reasoning-gym generators, with the gold answer and the task's scorer kept.

Each configured task is one dataset seeded from the build's seed and its position in the config,
so the same config always yields the same questions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from raspberry.config import QuestionsConfig, ReasoningGymTask
from raspberry.errors import ConfigError
from raspberry.records import Lineage, Question

SOURCE = "reasoning_gym"


def _dataset(spec: ReasoningGymTask, seed: int, size: int) -> Any:
    import reasoning_gym  # imported lazily: it loads 100+ generators

    return reasoning_gym.create_dataset(spec.task, size=size, seed=seed, **spec.params)


def validate(cfg: QuestionsConfig) -> None:
    """Fail fast, before any shard runs, on an unknown task or bad task parameters."""
    for i, spec in enumerate(cfg.reasoning_gym):
        try:
            _dataset(spec, cfg.seed, 1)[0]
        except Exception as exc:  # reasoning-gym raises many kinds; all mean a bad config entry
            raise ConfigError(
                f"questions.reasoning_gym.{i}: task '{spec.task}' with params {spec.params}: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def question_id(source: str, task: str, prompt: str) -> str:
    return hashlib.sha256(f"{source}\n{task}\n{prompt}".encode()).hexdigest()[:16]


def to_question(task: str, entry: dict[str, Any], config_hash: str) -> Question:
    """A question row from a reasoning-gym entry, carrying what the task's scorer needs."""
    qid = question_id(SOURCE, task, entry["question"])
    kept = {"question": entry["question"], "answer": entry["answer"], "metadata": entry["metadata"]}
    return Question(
        id=qid,
        source=SOURCE,
        task=task,
        prompt=entry["question"],
        reference_answer=str(entry["answer"]),
        verification=json.dumps(
            {"kind": "reasoning_gym", "task": task, "entry": kept}, default=str
        ),
        lineage=Lineage(question_id=qid, stage="questions", config_hash=config_hash),
    )


def generate(cfg: QuestionsConfig, config_hash: str) -> list[Question]:
    """All questions of the config, exact duplicates dropped, in a stable order."""
    out: list[Question] = []
    seen: set[str] = set()
    for position, spec in enumerate(cfg.reasoning_gym):
        for entry in _dataset(spec, cfg.seed + position, spec.count):
            question = to_question(spec.task, entry, config_hash)
            if question.id not in seen:
                seen.add(question.id)
                out.append(question)
    return out
