"""Prefect task: SFT rows from one shard of accepted dialogues."""

import asyncio

from raspberry.stages import sft_shard
from tasks.shard import shard_task

sft_task = shard_task(
    "sft",
    lambda config, sim_url, build_id, shard, questions, dialogues, verdicts: asyncio.run(
        sft_shard(config, sim_url, questions, dialogues, verdicts, build_id=build_id)
    ),
)
