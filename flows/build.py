"""The build flow: four stages in order, one task per (stage, shard), Failed if any shard failed.

Shard i of a stage reads shard i of the stages before it. A shard whose inputs are not done is
not run and is recorded as failed with the reason, so `raspberry status` names it and a rerun of
the same build id recomputes it alone; completed shards come from Prefect's cache after their
output file is checked against its fingerprint.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.progress import StageProgress
from raspberry.config import BuildConfig, load_config
from raspberry.questions import earlier_question_shards
from raspberry.records import STAGES
from raspberry.sim.process import sim_for
from raspberry.stages import UPSTREAM, stage_key
from raspberry.store import (
    build_dir,
    fingerprint,
    init_manifest,
    read_manifest,
    set_shard,
    shard_name,
    update_manifest,
)
from tasks.dialogues import dialogues_task
from tasks.export import export_task
from tasks.questions import candidates_task, duplicates_task, questions_task
from tasks.sft import sft_task
from tasks.verdicts import verdicts_task

TASKS = {
    "candidates": candidates_task,
    "questions": questions_task,
    "dialogues": dialogues_task,
    "verdicts": verdicts_task,
    "sft": sft_task,
}
PAID = (
    "requests_sent",
    "cache_hits",
    "retries",
    "rate_limited",
    "tokens_in",
    "tokens_out",
    "cost_usd",
)


def _intact(folder: Path, entry: dict[str, Any] | None) -> bool:
    """The shard's file exists and is the one recorded (not deleted, not altered)."""
    if not entry or entry.get("state") != "done":
        return False
    path = folder / entry["path"]
    return path.exists() and fingerprint(path) == entry["fingerprint"]


def _inputs(
    folder: Path, manifest: dict[str, Any], stage: str, shard: int
) -> tuple[dict[str, str], str | None]:
    """The upstream shards' fingerprints, or the reason this shard cannot run."""
    inputs = {}
    for up in UPSTREAM[stage]:
        entry = manifest["stages"].get(up, {}).get(shard_name(shard))
        if not _intact(folder, entry):
            return {}, f"input {up}/{shard_name(shard)} is not done or its file changed"
        inputs[up] = entry["fingerprint"]  # type: ignore[index]
    if stage == "questions":
        entry = manifest.get("duplicates")
        if not _intact(folder, entry):
            return {}, "the build-wide duplicate pass is not done or its file changed"
        inputs["duplicates"] = entry["fingerprint"]  # type: ignore[index]
    return inputs, None


def _run_duplicates(config: BuildConfig, config_path: str, build_id: str, output_dir: str) -> None:
    """The duplicate pass over all candidate shards, once they are all done; recorded in the
    manifest (or its absence explained in the log, and the questions shards are then blocked)."""
    logger = get_run_logger()
    manifest = read_manifest(output_dir, build_id)
    folder = build_dir(output_dir, build_id)
    shards = manifest["stages"].get("candidates", {})
    inputs = {}
    for shard in range(config.questions.shards):
        entry = shards.get(shard_name(shard))
        if not _intact(folder, entry):
            logger.error("duplicate pass not run: candidates/%s is not done", shard_name(shard))
            update_manifest(output_dir, build_id, duplicates={"state": "failed"})
            return
        inputs[shard_name(shard)] = entry["fingerprint"]  # type: ignore[index]
    earlier_ids = config.questions.filters.near_duplicates.earlier_builds
    earlier = {str(p): fingerprint(p) for p in earlier_question_shards(output_dir, earlier_ids)}
    params = {
        "build_id": build_id,
        "output_dir": output_dir,
        "stage_key": stage_key(config, "questions"),
        "inputs": inputs,
        "earlier": earlier,
        "config_path": config_path,
    }
    state = duplicates_task(**params, return_state=True)
    result = state.result() if state.is_completed() else None
    if state.name == "Cached" and not _intact(folder, result):
        logger.warning("duplicates: cached output missing or altered; recomputing")
        state = duplicates_task.with_options(refresh_cache=True)(**params, return_state=True)
        result = state.result() if state.is_completed() else None
    update_manifest(output_dir, build_id, duplicates=result or {"state": "failed"})
    if result:
        logger.info("duplicates: %s dropped %s", result["rows"], result["reasons"])


def _run_stage(
    runner: ThreadPoolTaskRunner,
    stage: str,
    config: BuildConfig,
    config_path: str,
    build_id: str,
    output_dir: str,
    sim_url: str | None,
) -> dict[str, Any]:
    logger = get_run_logger()
    manifest = read_manifest(output_dir, build_id)
    folder = build_dir(output_dir, build_id)
    key = stage_key(config, stage)
    totals: dict[str, Any] = {
        "shards_done": 0,
        "shards_failed": 0,
        "shards_cached": 0,
        "rows_in": 0,
        "rows_out": 0,
        **dict.fromkeys(PAID, 0),
    }

    def submit(shard: int, inputs: dict[str, str], refresh: bool = False) -> PrefectFuture:
        task = TASKS[stage].with_options(refresh_cache=True) if refresh else TASKS[stage]
        return runner.submit(
            task,
            parameters={
                "build_id": build_id,
                "stage": stage,
                "shard": shard,
                "output_dir": output_dir,
                "stage_key": key,
                "inputs": inputs,
                "config_path": config_path,
                "sim_url": sim_url,
            },
        )

    futures: dict[int, tuple[PrefectFuture, dict[str, str]]] = {}
    for shard in range(config.questions.shards):
        inputs, blocked = _inputs(folder, manifest, stage, shard)
        if blocked:
            set_shard(output_dir, build_id, stage, shard, {"state": "failed", "error": blocked})
            totals["shards_failed"] += 1
            logger.error("%s/%s not run: %s", stage, shard_name(shard), blocked)
            continue
        futures[shard] = (submit(shard, inputs), inputs)
    for shard, (future, inputs) in futures.items():
        state = future.wait() or future.state
        cached = state.name == "Cached"
        if cached and not _intact(folder, future.result()):
            logger.warning(
                "%s/%s: cached output missing or altered; recomputing", stage, shard_name(shard)
            )
            future = submit(shard, inputs, refresh=True)
            state, cached = future.wait() or future.state, False
        if not state.is_completed():
            totals["shards_failed"] += 1
            continue
        result = future.result()
        if cached:
            # The manifest may predate the cached result (e.g. a run that failed after it).
            entry = {k: v for k, v in result.items() if k not in ("stage", "shard")}
            set_shard(output_dir, build_id, stage, shard, entry)
        totals["shards_done"] += 1
        totals["shards_cached"] += cached
        totals["rows_in"] += result["rows_in"]
        totals["rows_out"] += result["rows_out"]
        for name in PAID:
            # A shard served from the cache cost nothing in this run.
            totals[name] += 0 if cached else result.get(name, 0)
    logger.info("%s: %s", stage, totals)
    return totals


@flow(name="build_dataset", flow_run_name="build-{build_id}")
def build_dataset(
    config_path: str, build_id: str, output_dir: str | None = None, stages: list[str] | None = None
) -> Any:
    """Run the selected stages (default: all four) of a build, then export the SFT rows."""
    config = load_config(config_path)
    out = output_dir or config.output_dir
    selected = [s for s in STAGES if s in (stages or STAGES)]
    init_manifest(out, build_id, {s: stage_key(config, s) for s in selected})
    started = time.time()
    summary: dict[str, Any] = {
        "build_id": build_id,
        "output_dir": str(Path(out).resolve()),
        "stages": {},
        "exports": {},
    }
    with (
        sim_for(config) as sim_url,
        ThreadPoolTaskRunner(max_workers=config.run.parallel_shards) as runner,
    ):
        for stage in selected:
            if stage == "questions":
                _run_duplicates(config, config_path, build_id, out)
            with StageProgress(stage, build_id, get_run_logger()):
                summary["stages"][stage] = _run_stage(
                    runner, stage, config, config_path, build_id, out, sim_url
                )
    if "sft" in selected:
        settings = config.sft.export.model_dump()
        # Recorded so that `raspberry export` can redo the files the same way, without the config.
        update_manifest(out, build_id, export=settings)
        exported = export_task(build_id, out, settings)
        summary["exports"], summary["export_report"] = exported["paths"], exported["report"]
    failed = sum(s["shards_failed"] for s in summary["stages"].values())
    summary["state"] = "failed" if failed else "completed"
    summary["wall_s"] = round(time.time() - started, 2)
    update_manifest(out, build_id, run=summary)
    if failed:
        return Failed(message=f"{failed} shard(s) failed; see `raspberry status {build_id}`")
    return summary
