"""Prefect task: the verdicts on one shard of dialogues."""

import asyncio

from raspberry.stages import verdicts_shard
from tasks.shard import shard_task

verdicts_task = shard_task(
    "verdicts",
    lambda config, sim_url, build_id, shard, questions, dialogues: asyncio.run(
        verdicts_shard(config, sim_url, questions, dialogues, build_id=build_id)
    ),
)
