"""The build flow: the stages in order, each a subflow with one task per shard; Failed if any
shard failed.

Shard i of a stage reads shard i of the stages before it. A shard whose inputs are not done is
not run and is recorded as failed with the reason, so `raspberry status` names it and a rerun of
the same build id recomputes it alone; completed shards come from Prefect's cache after their
output file is checked against its fingerprint. The same flow serves `raspberry build`, `raspberry
rerun`, the nightly deployment (prefect.yaml) and `raspberry serve`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from prefect import Task, flow, get_client, get_run_logger
from prefect.filesystems import RemoteFileSystem
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Crashed, Failed, State
from raspberry_flows.artifacts import publish_build, publish_stage
from raspberry_flows.executor import stage_runners
from raspberry_flows.progress import StageProgress, build_bars
from raspberry_sim.process import sim_for
from raspberry_sim.solvers import SOLVES
from raspberry_tasks.export import export_task
from raspberry_tasks.shard import build_input_task, shard_task, worker

from raspberry.build_files.folder import Folder
from raspberry.build_files.manifest import RunRecord
from raspberry.build_files.store import BuildStore, results_folder, shard_name
from raspberry.errors import RaspberryError, StateUnavailable
from raspberry.figures import tally
from raspberry.llm.books import paid
from raspberry.llm.config import SIM_BASE_URL
from raspberry.llm.shared_limits import limits_for
from raspberry.pipeline.plan import build_input_sources, progress_units, shard_inputs, stale
from raspberry.pipeline.preflight import preflight
from raspberry.report.summary import build_summary, shortfalls, stage_line
from raspberry.stages import registry
from raspberry.stages.config import BuildConfig, load_config
from raspberry.stages.spec import BuildInput, Stage

PAID = (
    "requests_sent",
    "cache_hits",
    "retries",
    "rate_limited",
    "tokens_in",
    "tokens_out",
    "tokens_cache_read",
    "tokens_cache_write",
    "tokens_thinking",
    "cost_usd",
)


def _cached_task(task: Task, output_dir: str) -> Task:
    """The task with its results kept beside the builds, whatever process runs it."""
    return task.with_options(result_storage=_result_storage(output_dir))


def _result_storage(output_dir: str) -> Path | str:
    folder = results_folder(output_dir)
    if folder.local:
        return Path(folder.path())
    # Prefect takes a remote result store only as a saved block; it is named after its location.
    # Prefect wants scheme://location/path; fsspec's form of an in-memory path has no location.
    protocol = folder.fs.protocol if isinstance(folder.fs.protocol, str) else folder.fs.protocol[0]
    basepath = f"{protocol}://{folder.path().lstrip('/')}"
    name = "raspberry-results-" + hashlib.sha256(basepath.encode()).hexdigest()[:12]
    RemoteFileSystem(basepath=basepath).save(name, overwrite=True)
    return f"remote-file-system/{name}"


def _checked(store: BuildStore, run: Any) -> tuple[State, bool]:
    """Run a cached task (`run(refresh)` returns its final state); a result served from the cache
    that the plan finds stale is computed again (its rows that were answered come from the
    request cache). Returns (state, from cache)."""
    state = run(False)
    if state.name == "Cached" and (reason := stale(store, state.result())):
        get_run_logger().warning("%s", reason)
        state = run(True)
    return state, state.name == "Cached"


def _run_build_input(
    config: BuildConfig,
    config_path: str,
    build_id: str,
    output_dir: str,
    spec: Stage,
    build_input: BuildInput,
    sim_url: str | None,
) -> None:
    """A build-wide input of a stage, once all shards it reads are done; recorded in the manifest
    (or its absence explained in the log, and the stage's shards are then blocked)."""
    logger = get_run_logger()
    name = build_input.name
    store = BuildStore(output_dir, build_id)
    inputs, earlier, blocked = build_input_sources(config, store, store.manifest(), build_input)
    if blocked:
        logger.error("%s pass not run: %s", name, blocked)
        store.record(name, {"state": "failed"})
        return
    params = {
        "build_id": build_id,
        "stage": spec.name,
        "name": name,
        "output_dir": output_dir,
        "stage_key": spec.key(config),
        "inputs": inputs,
        "earlier": earlier,
        "config_path": config_path,
        "sim_url": sim_url,
    }
    task = _cached_task(build_input_task, output_dir)
    state, _ = _checked(
        store,
        lambda refresh: task.with_options(refresh_cache=refresh)(**params, return_state=True),
    )
    result = state.result() if state.is_completed() else None
    store.record(name, result or {"state": "failed"})
    if result:
        said = [
            f"{k} {tally(v) if isinstance(v, dict) else v}"
            for k, v in result.items()
            if k not in ("state", "path", "fingerprint")
        ]
        logger.info("%s: %s", name, "; ".join(said))


@flow(name="build_stage", flow_run_name="{build_id}-{stage}")
def build_stage(
    stage: str, config_path: str, build_id: str, output_dir: str, sim_url: str | None
) -> dict[str, Any] | State:
    """One stage of a build: a task per shard, run `run.parallel_shards` at a time; its artifacts
    (shard states, funnel, tokens and cost, a preview, progress). Failed if a shard failed."""
    logger = get_run_logger()
    _tag_run(f"build:{build_id}", f"stage:{stage}")
    config = load_config(config_path)
    spec = registry.stage(stage)
    for build_input in spec.build_inputs:
        _run_build_input(config, config_path, build_id, output_dir, spec, build_input, sim_url)
    store = BuildStore(output_dir, build_id)
    manifest = store.manifest()
    task = _cached_task(shard_task(stage), output_dir)
    key = spec.key(config)
    totals: dict[str, Any] = {
        "shards_done": 0,
        "shards_failed": 0,
        "shards_cached": 0,
        "computed": [],
        "rows_in": 0,
        "rows_out": 0,
        "rows_failed": 0,
        **dict.fromkeys(PAID, 0),
    }

    def submit(shard: int, inputs: dict[str, str], refresh: bool) -> PrefectFuture:
        return task.with_options(refresh_cache=refresh).submit(
            build_id=build_id,
            stage=stage,
            shard=shard,
            output_dir=output_dir,
            stage_key=key,
            inputs=inputs,
            config_path=config_path,
            sim_url=sim_url,
        )

    # Entered before the first submission: it zeroes the board the shards count on.
    weights, unit = progress_units(manifest, spec, config.shards)
    sharing = limits_for(config.gateway.state()).shared if spec.roles(config) else None
    with StageProgress(stage, build_id, logger, weights, unit, sharing) as progress:
        futures: dict[int, tuple[PrefectFuture, dict[str, str]]] = {}
        for shard in range(config.shards):
            inputs, blocked = shard_inputs(store, manifest, spec, shard)
            if blocked:
                store.record_shard(stage, shard, {"state": "failed", "error": blocked})
                progress.finished(shard)
                totals["shards_failed"] += 1
                logger.error("%s/%s not run: %s", stage, shard_name(shard), blocked)
                continue
            futures[shard] = (submit(shard, inputs, False), inputs)
        for shard, (future, _) in futures.items():

            def run(refresh: bool, first: PrefectFuture = future, shard: int = shard) -> State:
                f = submit(shard, futures[shard][1], True) if refresh else first
                f.wait()
                return f.state

            state, cached = _checked(store, run)
            progress.finished(shard)
            if not state.is_completed():
                totals["shards_failed"] += 1
                if (state.message or "").startswith(StateUnavailable.SIGN):
                    totals["state_lost"] = state.message
                continue
            result = state.result()
            if cached:
                # The manifest may predate the cached result (e.g. a run that failed after it).
                entry = {k: v for k, v in result.items() if k not in ("stage", "shard")}
                store.record_shard(stage, shard, entry)
            else:
                totals["computed"].append(shard_name(shard))
            totals["shards_done"] += 1
            totals["shards_cached"] += cached
            totals["rows_in"] += result["rows_in"]
            totals["rows_out"] += result["rows_out"]
            totals["rows_failed"] += len(result.get("rows_failed") or {})
            for name in PAID:
                # A shard served from the cache cost nothing in this run.
                totals[name] += 0 if cached else result.get(name, 0)
    logger.info("%s", stage_line(stage, totals))
    publish_stage(store, stage, totals)
    if totals["shards_failed"] or totals["rows_failed"]:
        message = f"{totals['shards_failed']} shard(s) and {totals['rows_failed']} row(s) failed"
        return Failed(message=message, data=totals)
    return totals


def mark_interrupted(flow_run_id: str | None, timeout_s: float) -> None:
    """Mark an interrupted build's flow run Crashed on its server, waiting at most timeout_s."""
    if not flow_run_id:
        return

    def mark() -> None:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                flow_run_id, Crashed(message="interrupted (Ctrl-C); rerun to resume"), force=True
            )

    thread = threading.Thread(target=mark, daemon=True)
    thread.start()
    thread.join(timeout_s)


def _run_name() -> str:
    """build-<build id>; for a scheduled run, the id its config and scheduled date make."""
    params = flow_run.parameters
    if params.get("build_id"):
        return f"build-{params['build_id']}"
    try:
        return f"build-{load_config(params['config_path']).build_id_for(_scheduled())}"
    except RaspberryError:  # the run itself reports the broken config
        return f"build-{_scheduled():%Y%m%d}"


def _scheduled() -> Any:
    return flow_run.scheduled_start_time


def _tag_run(*labels: str) -> None:
    """Tag the running flow run, e.g. with its build id (known only now for a scheduled run): a
    filter in the UI. Set on flow runs only: a tagged task would ask the server for a
    tag concurrency slot on every run."""
    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, tags=sorted(set(flow_run.tags) | set(labels)))


@flow(name="build_dataset", flow_run_name=_run_name)
def build_dataset(
    config_path: str,
    build_id: str | None = None,
    output_dir: str | None = None,
    stages: list[str] | None = None,
    executor: str | None = None,
    workers: int | None = None,
) -> Any:
    """Run the selected stages (default: all) of a build, then export the SFT rows and write the
    build report. Without a build id (the nightly deployment): <config name>-<scheduled date>.
    executor, workers: override the config's run.executor and run.workers (executor defaults to
    the environment's RASPBERRY_EXECUTOR)."""
    config_path = str(Path(config_path).resolve())
    config = load_config(config_path)
    # A deployment says where its shards run in its environment (docker compose's scheduler).
    executor = executor or os.environ.get("RASPBERRY_EXECUTOR")
    config = config.model_copy(update={"run": config.run.overridden(executor, workers)})
    build_id = build_id or config.build_id_for(_scheduled())
    out = Folder(output_dir or config.output_dir).url()
    selected = [s for s in registry.names() if s in (stages or registry.names())]
    preflight(config, selected, out, build_id)
    _tag_run(f"build:{build_id}")
    with BuildStore(out, build_id).lock():
        return _build(config, config_path, build_id, out, selected)


def _build(
    config: BuildConfig, config_path: str, build_id: str, out: str, selected: list[str]
) -> Any:
    store = BuildStore(out, build_id)
    store.init(registry.stage_keys(config, selected))
    earlier = store.manifest().get("input_files", {})
    store.record("input_files", {**earlier, **registry.input_files(config, selected)})
    started = time.time()
    summary: RunRecord = {
        "build_id": build_id,
        "output_dir": out,
        "config_path": config_path,
        "selected": selected,
        "flow_run_id": str(flow_run.id) if flow_run.id else None,
        "started_at": started,
        "state": "running",
        "stages": {},
        "exports": {},
    }
    # Recorded now, so that a run killed midway can still be repeated by `raspberry rerun`.
    store.record_run(summary)
    summary["executor"] = config.run.executor
    summary["worker"] = worker()  # the flow's own process
    with stage_runners(config.run) as runner, sim_for(config.sim) as sim_url, build_bars(selected):
        for stage in selected:
            stage_flow = build_stage.with_options(task_runner=runner())
            state = stage_flow(stage, config_path, build_id, out, sim_url, return_state=True)
            result = state.result(raise_on_failure=False)
            if not isinstance(result, dict):  # the stage itself broke, not one of its shards
                get_run_logger().error("%s stage failed: %s", stage, result)
                result = {"shards_failed": config.shards, "error": str(result)}
            summary["stages"][stage] = result
            if lost := result.pop("state_lost", None):
                # Nothing more can be paid or booked: the run ends here, as a kill would.
                summary["state"], summary["error"] = "failed", lost
                store.record_run(summary)
                return Failed(message=lost)
    store.record("recipe", registry.recipe(config, selected))
    for spec in (s for s in map(registry.stage, selected) if s.exports):
        settings = spec.exports.settings(config)  # type: ignore[union-attr]
        # Recorded so that `raspberry export` can redo the files the same way, without the config.
        store.record("export", settings)
        exported = export_task(build_id, out, spec.name, settings)
        summary["exports"], summary["export_report"] = exported["paths"], exported["report"]
    failed = sum(s["shards_failed"] for s in summary["stages"].values())
    failed_rows = sum(s.get("rows_failed", 0) for s in summary["stages"].values())
    summary["state"] = "failed" if failed or failed_rows else "completed"
    summary["wall_s"] = round(time.time() - started, 2)
    bill = paid(config.gateway.state(), build_id)
    summary["paid_usd"], summary["unconfirmed_usd"] = bill.usd, bill.unconfirmed_usd
    ran = {s: t for s, t in build_summary(store.manifest(), summary)["stages"].items()
           if s in selected}  # fmt: skip
    if short := shortfalls(ran, config.run.max_drop_share):
        summary["shortfalls"] = short + _why_short(config, short[-1])
    store.record_run(summary)
    publish_build(store)
    if failed or failed_rows:
        return Failed(
            message=f"{failed} shard(s) and {failed_rows} row(s) failed; see "
            f"`raspberry status {build_id}`, then `raspberry rerun {build_id}`"
        )
    if short:
        return Failed(message=f"build {build_id} fell short: {'; '.join(summary['shortfalls'])}")
    return summary


def _why_short(config: BuildConfig, last: str) -> list[str]:
    """For a build whose teacher is the simulator and whose questions went unsolved: what the
    simulated teacher can solve (it is no model: it knows a few patterns)."""
    teacher = config.models.get("teacher")
    simulated = teacher and config.providers[teacher.provider].base_url == SIM_BASE_URL
    if simulated and "not solved" in last:
        return [f"the simulated teacher could not solve them: {SOLVES}"]
    return []
