"""Prefect tasks of the question stages: candidates per shard, one build-wide duplicate pass,
then the checked questions per shard."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import task

from raspberry.config import load_config
from raspberry.questions import duplicates
from raspberry.stages import candidates_shard, questions_shard
from raspberry.store import duplicates_path, shard_path, write_duplicates
from tasks.shard import SHARD_CACHE, shard_task

candidates_task = shard_task(
    "candidates",
    lambda config, sim_url, build_id, shard: asyncio.run(
        candidates_shard(config, sim_url, shard, build_id=build_id)
    ),
)

questions_task = shard_task(
    "questions",
    lambda config, sim_url, build_id, shard, candidates, duplicates: asyncio.run(
        questions_shard(config, sim_url, candidates, duplicates, build_id=build_id)
    ),
)


@task(
    name="duplicates",
    cache_policy=SHARD_CACHE,
    persist_result=True,
    result_serializer="json",
    task_run_name="{build_id}-duplicates",
)
def duplicates_task(
    build_id: str,
    output_dir: str,
    stage_key: str,
    inputs: dict[str, str],
    earlier: dict[str, str],
    config_path: str,
) -> dict[str, Any]:
    """Find the build's duplicates over all candidate shards (inputs: shard -> fingerprint;
    earlier: earlier build shard path -> fingerprint), write them, return path and counts."""
    config = load_config(config_path)
    shards = [shard_path(output_dir, build_id, "candidates", i) for i in range(len(inputs))]
    found = duplicates(config.questions, shards, [Path(p) for p in earlier])
    out = duplicates_path(output_dir, build_id)
    fp = write_duplicates(out, found)
    return {
        "state": "done",
        "path": out.name,
        "fingerprint": fp,
        "rows": len(found),
        "reasons": dict(Counter(d["reason"] for d in found)),
    }
