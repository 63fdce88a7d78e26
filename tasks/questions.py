"""Prefect task: one shard of questions."""

from __future__ import annotations

from typing import Any

from prefect import task

from raspberry.config import load_config
from raspberry.stages import questions_shard
from tasks.shard import TASK_OPTIONS, run_shard


@task(name="questions-shard", **TASK_OPTIONS)
def questions_task(
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
    return run_shard(
        stage, build_id, shard, output_dir, inputs, lambda: questions_shard(config, shard)
    )
