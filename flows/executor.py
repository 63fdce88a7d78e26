"""Where a stage's shard tasks run: threads of the build's process (`run.executor: local`), or
the worker processes of a Dask cluster (`dask`), through prefect-dask's DaskTaskRunner.

With `dask` and no `dask_address`, the build starts a local cluster of `run.workers` processes
on loopback for its whole run (each runs `parallel_shards` shard tasks at once) and stops it at
the end. With an address it submits to that scheduler (e.g. docker-compose's), whose workers
bring the package, the config at the same path and their own environment's keys. Workers report
their task runs to the Prefect API the build uses: the command's PREFECT_API_URL, which a local
cluster's workers inherit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from raspberry.stages.config import RunConfig


@contextlib.contextmanager
def stage_runners(run: RunConfig) -> Iterator[Callable[[], TaskRunner]]:
    """A maker of the task runner for each stage's subflow, valid while the context is open."""
    if run.executor == "local":
        yield lambda: ThreadPoolTaskRunner(max_workers=run.parallel_shards)
        return
    from prefect_dask import DaskTaskRunner

    if run.dask_address:
        yield lambda: DaskTaskRunner(address=run.dask_address)
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=run.workers,
        threads_per_worker=run.parallel_shards,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        yield lambda: DaskTaskRunner(address=cluster.scheduler_address)
