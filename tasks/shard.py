"""The Prefect tasks of a build, made from the stage registry: one (stage, shard) each, one per
build-wide input, and the exports.

A shard task is cached on its small inputs (build id, shard, output dir, the stage key and the
input shards' fingerprints) with persisted JSON results, kept under the output folder (the flow
sets the storage). The config path, the simulator's URL and the output folder's path do not enter
the key: a moved config, a new port or a folder reached by another path must not recompute work.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from functools import cache
from typing import Any

import pyarrow as pa
from prefect import State, Task, task
from prefect.cache_policies import INPUTS
from prefect.states import Failed

from raspberry.build_files.manifest import ShardEntry
from raspberry.build_files.records import Row
from raspberry.build_files.store import BuildStore
from raspberry.errors import StateUnavailable
from raspberry.llm.progress import in_shard
from raspberry.stages import registry
from raspberry.stages.config import load_config
from raspberry.stages.spec import BuildContext, ShardContext, Stage

SHARD_CACHE = INPUTS - "config_path" - "sim_url" - "output_dir"


def worker() -> str:
    """host:pid of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_shard(
    spec: Stage,
    store: BuildStore,
    shard: int,
    inputs: dict[str, str],
    compute: Callable[[], tuple[list[Row], dict[str, Any]]],
) -> dict[str, Any]:
    """Compute a shard, write it whole, record done or failed; return path and counts."""
    try:
        with in_shard(shard) as failed_rows:
            rows, stats = compute()
        fp = store.write_shard(spec.name, shard, rows, spec.row_type)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        store.record_shard(spec.name, shard, {"state": "failed", "error": error, "inputs": inputs})
        raise
    # The path is relative to the build folder, so the build can be moved or read from elsewhere.
    path = store.shard_path(spec.name, shard)
    entry: ShardEntry = {
        "state": "done",
        "path": path,
        "fingerprint": fp,
        "inputs": inputs,
        **stats,
    }
    entry["worker"] = worker()  # which process computed it: this one, or a Dask worker
    if failed_rows:  # done with the rest; a rerun computes it again for these rows
        entry["rows_failed"] = failed_rows
    store.record_shard(spec.name, shard, entry)
    return {"stage": spec.name, "shard": shard, **entry}


def _run_shard(
    build_id: str,
    stage: str,
    shard: int,
    output_dir: str,
    stage_key: str,
    inputs: dict[str, str],
    config_path: str,
    sim_url: str | None,
) -> dict[str, Any] | State:
    spec = registry.stage(stage)
    config = load_config(config_path)
    store = BuildStore(output_dir, build_id)

    def work() -> tuple[list[Row], dict[str, Any]]:
        rows: list[Any] = [
            store.read_shard(up, shard, registry.stage(up).row_type) for up in spec.upstream
        ]
        rows += [
            i.read(store.read_table(f"{i.name}.parquet", i.schema), shard)
            for i in spec.build_inputs
        ]
        ctx = ShardContext(config, sim_url, build_id, shard, stage_key)
        return asyncio.run(spec.run(ctx, *rows))

    try:
        return run_shard(spec, store, shard, inputs, work)
    except StateUnavailable as exc:  # the build stops on it (flows/build.py), in one line
        return Failed(message=str(exc))


@cache
def shard_task(stage: str) -> Task:
    """The Prefect task for one (stage, shard): read its inputs, compute, write, record."""
    return task(
        name=f"{stage}-shard",
        cache_policy=SHARD_CACHE,
        persist_result=True,
        result_serializer="json",
        task_run_name="{build_id}-{stage}-{shard}",
    )(_run_shard)


@task(
    name="build-input",
    cache_policy=SHARD_CACHE,
    persist_result=True,
    result_serializer="json",
    task_run_name="{build_id}-{name}",
)
def build_input_task(
    build_id: str,
    stage: str,
    name: str,
    output_dir: str,
    stage_key: str,
    inputs: dict[str, str],
    earlier: dict[str, str],
    config_path: str,
    sim_url: str | None,
) -> dict[str, Any]:
    """Compute a build-wide input over all shards of the stage it reads (inputs: shard ->
    fingerprint; earlier: earlier build shard URL -> fingerprint); write it; return its entry."""
    spec = next(i for i in registry.stage(stage).build_inputs if i.name == name)
    config = load_config(config_path)
    store = BuildStore(output_dir, build_id)
    shards = [store.files.url(store.shard_path(spec.reads, i)) for i in range(len(inputs))]
    found = spec.compute(BuildContext(config, sim_url, build_id), shards, list(earlier))
    path = f"{name}.parquet"
    fp = store.files.write_table(path, pa.Table.from_pylist(found, schema=spec.schema))
    return {"state": "done", "path": path, "fingerprint": fp, **spec.summarise(found)}
