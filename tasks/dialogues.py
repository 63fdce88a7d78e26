"""Prefect task: the dialogues of one shard of questions."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task

from raspberry.config import load_config
from raspberry.stages import dialogues_shard
from tasks.shard import TASK_OPTIONS, read_inputs, run_shard


@task(name="dialogues-shard", **TASK_OPTIONS)
def dialogues_task(
    build_id: str,
    stage: str,
    shard: int,
    output_dir: str,
    stage_key: str,
    inputs: dict[str, str],
    config_path: str,
    sim_url: str | None,
) -> dict[str, Any]:
    config = load_config(config_path)

    def compute():  # type: ignore[no-untyped-def]
        (questions,) = read_inputs(output_dir, build_id, shard, ["questions"])
        return asyncio.run(dialogues_shard(config, sim_url, questions))

    return run_shard(stage, build_id, shard, output_dir, inputs, compute)
