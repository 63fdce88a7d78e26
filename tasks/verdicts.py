"""Prefect task: the verdicts on one shard of dialogues."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task

from raspberry.config import load_config
from raspberry.stages import verdicts_shard
from tasks.shard import TASK_OPTIONS, read_inputs, run_shard


@task(name="verdicts-shard", **TASK_OPTIONS)
def verdicts_task(
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
        questions, dialogues = read_inputs(output_dir, build_id, shard, ["questions", "dialogues"])
        return asyncio.run(verdicts_shard(config, sim_url, questions, dialogues))

    return run_shard(stage, build_id, shard, output_dir, inputs, compute)
