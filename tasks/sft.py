"""Prefect task: SFT rows from one shard of accepted dialogues."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task

from raspberry.config import load_config
from raspberry.stages import sft_shard
from tasks.shard import TASK_OPTIONS, read_inputs, run_shard


@task(name="sft-shard", **TASK_OPTIONS)
def sft_task(
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
        questions, dialogues, verdicts = read_inputs(
            output_dir, build_id, shard, ["questions", "dialogues", "verdicts"]
        )
        return asyncio.run(sft_shard(config, sim_url, questions, dialogues, verdicts))

    return run_shard(stage, build_id, shard, output_dir, inputs, compute)
