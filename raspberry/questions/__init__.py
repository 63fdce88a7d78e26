"""Question sources. Each source module offers validate(cfg) and generate(cfg, config_hash)."""

from __future__ import annotations

from raspberry.config import QuestionsConfig
from raspberry.questions import reasoning_gym_source
from raspberry.records import Question

SOURCES = {reasoning_gym_source.SOURCE: reasoning_gym_source}


def validate(cfg: QuestionsConfig) -> None:
    for source in SOURCES.values():
        source.validate(cfg)


def questions_for_shard(cfg: QuestionsConfig, config_hash: str, shard: int) -> list[Question]:
    """Shard `shard` of cfg.shards: every cfg.shards-th question, so tasks mix across shards."""
    every = [q for source in SOURCES.values() for q in source.generate(cfg, config_hash)]
    return every[shard :: cfg.shards]
