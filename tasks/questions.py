"""Prefect task: one shard of questions."""

from raspberry.stages import questions_shard
from tasks.shard import shard_task

questions_task = shard_task(
    "questions", lambda config, sim_url, build_id, shard: questions_shard(config, shard)
)
