"""Prefect task: the dialogues of one shard of questions."""

import asyncio

from raspberry.stages import dialogues_shard
from tasks.shard import shard_task

dialogues_task = shard_task(
    "dialogues",
    lambda config, sim_url, build_id, shard, questions: asyncio.run(
        dialogues_shard(config, sim_url, questions, build_id=build_id)
    ),
)
