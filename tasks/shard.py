"""What every shard task shares: its cache policy, and recording the outcome in the manifest.

A shard task is cached on its small inputs (build id, shard, output dir, the stage key and the
input shards' fingerprints) with persisted JSON results. The config path and the simulator's URL
do not enter the key: a moved config or a new port must not recompute paid work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS

from raspberry.records import Row
from raspberry.store import read_shard, set_shard, shard_path, write_shard

SHARD_CACHE = INPUTS - "config_path" - "sim_url"
TASK_OPTIONS: dict[str, Any] = {
    "cache_policy": SHARD_CACHE,
    "persist_result": True,
    "result_serializer": "json",
    "task_run_name": "{build_id}-" + "{stage}-{shard}",
}


def read_inputs(output_dir: str, build_id: str, shard: int, stages: list[str]) -> list[list[Any]]:
    return [read_shard(shard_path(output_dir, build_id, s, shard), s) for s in stages]


def run_shard(
    stage: str,
    build_id: str,
    shard: int,
    output_dir: str,
    inputs: dict[str, str],
    compute: Callable[[], tuple[list[Row], dict[str, Any]]],
) -> dict[str, Any]:
    """Compute a shard, write it atomically, record done or failed; return path and counts."""
    out = shard_path(output_dir, build_id, stage, shard)
    try:
        rows, stats = compute()
        fp = write_shard(out, stage, rows)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        set_shard(
            output_dir,
            build_id,
            stage,
            shard,
            {"state": "failed", "error": error, "inputs": inputs},
        )
        raise
    entry = {"state": "done", "path": str(Path(out)), "fingerprint": fp, "inputs": inputs, **stats}
    set_shard(output_dir, build_id, stage, shard, entry)
    return {"stage": stage, "shard": shard, **entry}
