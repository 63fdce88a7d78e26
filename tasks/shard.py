"""What every shard task shares: its signature, cache policy, and the manifest bookkeeping.

A shard task is cached on its small inputs (build id, shard, output dir, the stage key and the
input shards' fingerprints) with persisted JSON results, kept under the output folder (the flow
sets the storage). The config path, the simulator's URL and the output folder's path do not enter
the key: a moved config, a new port or a folder reached by another path must not recompute work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import Task, task
from prefect.cache_policies import INPUTS

from raspberry.config import BuildConfig, load_config
from raspberry.llm.progress import collecting_row_failures
from raspberry.records import Row
from raspberry.stages import UPSTREAM
from raspberry.store import (
    build_dir,
    duplicates_path,
    read_duplicates,
    read_shard,
    set_shard,
    shard_path,
    write_shard,
)

# compute(config, sim_url, build_id, shard, *input rows in UPSTREAM order) -> (rows, stats)
Compute = Callable[..., tuple[list[Row], dict[str, Any]]]
SHARD_CACHE = INPUTS - "config_path" - "sim_url" - "output_dir"


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
        with collecting_row_failures() as failed_rows:
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
    # The path is relative to the build folder, so the build can be moved or read from elsewhere.
    relative = str(out.relative_to(build_dir(output_dir, build_id)))
    entry = {"state": "done", "path": relative, "fingerprint": fp, "inputs": inputs, **stats}
    if failed_rows:  # done with the rest; a rerun computes it again for these rows
        entry["rows_failed"] = failed_rows
    set_shard(output_dir, build_id, stage, shard, entry)
    return {"stage": stage, "shard": shard, **entry}


def shard_task(stage: str, compute: Compute) -> Task:
    """The Prefect task for one (stage, shard): read its inputs, compute, write, record."""

    def run(
        build_id: str,
        stage: str,
        shard: int,
        output_dir: str,
        stage_key: str,
        inputs: dict[str, str],
        config_path: str,
        sim_url: str | None,
    ) -> dict[str, Any]:
        config: BuildConfig = load_config(config_path)

        def work() -> tuple[list[Row], dict[str, Any]]:
            rows = [
                read_shard(shard_path(output_dir, build_id, s, shard), s) for s in UPSTREAM[stage]
            ]
            if stage == "questions":
                # The one build-wide input: which of this shard's candidates are duplicates.
                rows.append(read_duplicates(duplicates_path(output_dir, build_id), shard))
            return compute(config, sim_url, build_id, shard, *rows)

        return run_shard(stage, build_id, shard, output_dir, inputs, work)

    run.__name__ = f"{stage}_shard"
    return task(
        name=f"{stage}-shard",
        cache_policy=SHARD_CACHE,
        persist_result=True,
        result_serializer="json",
        task_run_name="{build_id}-{stage}-{shard}",
    )(run)
