"""The build commands: build, rerun, status and export, over the core's calls.

Exit codes: 0 every shard done; 1 some shard or row failed; 2 bad input (config, prompts, keys,
build); 3 the disk is full (everything already written is intact: free space and rerun the
build id); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raspberry_app.settings import prefect_env

from raspberry.api import export_build
from raspberry.build_files.folder import Folder
from raspberry.build_files.manifest import Manifest
from raspberry.build_files.store import BuildStore, check_build_id
from raspberry.errors import DiskFull, RaspberryError, StateUnavailable, disk_full
from raspberry.llm.books import Paid, paid
from raspberry.report.page import REPORT_NAME
from raspberry.report.summary import build_summary, summary_lines
from raspberry.stages import registry
from raspberry.stages.config import BuildConfig, load_config
from raspberry.stages.sft.export import FORMATS


def new_build(
    config_path: str | Path,
    build_id: str | None,
    stages: list[str],
    output_dir: str | Path | None,
    exit_on_ctrl_c: bool = False,
    executor: str | None = None,
    workers: int | None = None,
    log_file: Path | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """Check everything, take the build's lock and run it (`raspberry build` and
    `raspberry.build`); return its output folder, its id and its manifest."""
    from raspberry.pipeline.preflight import (
        preflight,  # imports the question sources: only when building
    )

    config_path = str(Path(config_path).resolve())
    config = load_config(config_path)
    config.run.overridden(executor, workers)  # a bad --executor is one line, before anything
    out = str(output_dir or config.output_dir)
    build_id = check_build_id(build_id or config.build_id_for(dt.datetime.now(dt.UTC)))
    preflight(config, stages, out, build_id)
    for line in _changed_files(BuildStore(out, build_id), config):
        print(f"changed since the last run: {line}; that stage and those after it are computed "
              "again", flush=True)  # fmt: skip
    with BuildStore(out, build_id).lock():  # refused at once when another process writes it
        manifest = run_flow(
            config, config_path, build_id, out, stages, exit_on_ctrl_c, executor, workers, log_file
        )
    return out, build_id, manifest


def cmd_build(args: argparse.Namespace) -> int:
    if args.dry_run:
        from raspberry_app.estimate import cmd_estimate

        return cmd_estimate(args)
    if args.pilot is not None:
        raise RaspberryError("--pilot goes with --dry-run: a pilot comes before an estimate")
    stages = registry.selected(args.stages)
    _, _, manifest = new_build(
        args.config,
        args.build_id,
        stages,
        args.output_dir,
        exit_on_ctrl_c=True,
        executor=args.executor,
        workers=args.workers,
    )
    return _report_run(manifest, args.json)


def cmd_rerun(args: argparse.Namespace) -> int:
    """The build again with the config, stages and output folder its last run used: failed or
    missing shards are computed, the rest come from the cache once their files check out."""
    from raspberry.pipeline.preflight import preflight

    manifest = BuildStore(args.output_dir, args.build_id).manifest()
    last = (manifest.get("runs") or [{}])[-1]
    if "config_path" not in last:
        raise RaspberryError(
            f"build '{args.build_id}' has no recorded run to repeat; run it with "
            f"`raspberry build --config CONFIG --build-id {args.build_id}`"
        )
    config_path, stages = last["config_path"], last["selected"]
    config = load_config(config_path)
    changed = [s for s in stages if manifest["config_hash"].get(s) != registry.stage(s).key(config)]
    if changed:
        files = registry.changed_files(manifest.get("input_files", {}), config)
        what = f"{config_path} or a file it names ({'; '.join(files)})" if files else config_path
        raise RaspberryError(
            f"{what} changed since build '{args.build_id}' last ran: stages {changed} would "
            "be computed again, not rerun; if that is what you want, run `raspberry build "
            f"--config {config_path} --build-id {args.build_id}`"
        )
    # The folder the manifest was found in, wherever the build ran before (it may have moved).
    preflight(config, stages, args.output_dir, args.build_id)
    with BuildStore(args.output_dir, args.build_id).lock():
        manifest = run_flow(
            config,
            config_path,
            args.build_id,
            args.output_dir,
            stages,
            exit_on_ctrl_c=True,
            executor=args.executor,
            workers=args.workers,
        )
        return _report_run(manifest, args.json)


def _changed_files(store: BuildStore, config: BuildConfig) -> list[str]:
    if not store.exists():
        return []
    return registry.changed_files(store.manifest().get("input_files", {}), config)


def run_flow(
    config: BuildConfig,
    config_path: str,
    build_id: str,
    output_dir: str,
    stages: list[str],
    exit_on_ctrl_c: bool = False,
    executor: str | None = None,
    workers: int | None = None,
    log_file: Path | None = None,
) -> dict[str, Any]:
    """Run the build flow (under the build's lock, which the caller holds); return the manifest.
    A command exits at once on Ctrl-C; a library caller gets KeyboardInterrupt. log_file: where
    Prefect's log lines go instead of the console (the Python API's quiet mode)."""
    prefect_env()
    from raspberry_flows.server import api_server

    quiet = _logs_to(log_file) if log_file else contextlib.nullcontext()
    with quiet, api_server() as api_url:
        guard = (
            _interruptible(output_dir, build_id, api_url)
            if exit_on_ctrl_c
            else contextlib.nullcontext()
        )
        with guard:
            from raspberry_flows.build import (
                build_dataset,  # imported late: Prefect reads its settings then
            )

            state = build_dataset(
                config_path=config_path,
                build_id=build_id,
                output_dir=output_dir,
                stages=stages,
                executor=executor,
                workers=workers,
                return_state=True,
            )
    manifest = BuildStore(output_dir, build_id).manifest()
    _raise_if_disk_full(state.message or "", manifest, output_dir, config.gateway.cache_path)
    if (state.message or "").startswith(StateUnavailable.SIGN):
        raise StateUnavailable(state.message)
    return manifest


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Prefect's console handlers silent, every log line of the run appended to `path`."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    consoles = [
        h
        for name in ("", "uvicorn", "fastapi")
        for h in logging.getLogger(name).handlers
        if isinstance(h, PrefectConsoleHandler)
    ]
    levels = [h.level for h in consoles]
    for handler in consoles:
        handler.setLevel(logging.CRITICAL + 1)
    logging.getLogger().addHandler(to_file)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(to_file)
        to_file.close()
        for handler, level in zip(consoles, levels, strict=True):
            handler.setLevel(level)


def _report_run(manifest: Manifest, as_json: bool) -> int:
    run = (manifest.get("runs") or [None])[-1]
    summary = build_summary(manifest, run)
    print()
    _print(summary, manifest, "this run")
    if short := (run or {}).get("shortfalls"):
        summary["shortfalls"] = short
        print(f"error: build {manifest['build_id']} fell short: {'; '.join(short)}",
              file=sys.stderr, flush=True)  # fmt: skip
    if as_json:
        print(json.dumps(summary), flush=True)
    return 0 if summary["state"] == "completed" and not short else 1


@contextlib.contextmanager
def _interruptible(output_dir: str, build_id: str, api_url: str | None) -> Iterator[None]:
    """Ctrl-C ends the build at once with one line and exit 130. Everything it wrote is whole
    (shards and the manifest are replaced atomically, answers committed one by one), so it stops
    as a kill would, and `raspberry rerun` resumes it; a server's flow run is marked Crashed."""
    ours = os.environ.get("PREFECT_API_URL") != api_url  # a temporary server dies with us

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C changes nothing
        print(
            f"interrupted: build '{build_id}' stopped; `raspberry rerun {build_id} --output-dir "
            f"{output_dir}` resumes it without paying again for what was answered",
            file=sys.stderr,
            flush=True,
        )
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        if not ours:
            from raspberry_flows.build import mark_interrupted

            runs = BuildStore(output_dir, build_id).manifest().get("runs") or [{}]
            mark_interrupted(runs[-1].get("flow_run_id"), timeout_s=3.0)
        os._exit(130)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _raise_if_disk_full(message: str, manifest: Manifest, output_dir: str, cache_path: str) -> None:
    """A build that stopped on a full disk ends with one line saying so (exit 3), not a summary
    of shards that could not even record why they failed."""
    errors = [message] + [
        e.get("error", "") for shards in manifest["stages"].values() for e in shards.values()
    ]
    if any(disk_full(e) for e in errors):
        raise DiskFull(
            f"the disk is full under {Folder(output_dir).url()} or {Path(cache_path).resolve()}; "
            f"every file written is intact: free space and rerun build '{manifest['build_id']}'"
        )


def cmd_status(args: argparse.Namespace) -> int:
    store = BuildStore(args.output_dir, args.build_id)
    manifest = store.manifest()
    runs = manifest.get("runs") or [{}]
    if runs[-1].get("state") == "running" and not store.writer():
        runs[-1]["state"] = "interrupted"  # its process is gone: `raspberry rerun` resumes it
    summary = build_summary(manifest, None, _ledger_paid(manifest))
    changed = store.changed_shards(manifest)
    if changed:
        summary["changed"] = changed
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary, manifest, "when computed")
        for name in changed:
            print(
                f"changed: {name}: its file is gone or no longer matches its fingerprint; "
                f"`raspberry rerun {args.build_id}` computes it again"
            )
    return 1 if summary["state"] == "failed" else 0


def _ledger_paid(manifest: Manifest) -> Paid | None:
    """What the ledger says the build paid, read through the config of its last run (an
    interrupted run never recorded it); None when that config is gone."""
    config_path = (manifest.get("runs") or [{}])[-1].get("config_path")
    if not config_path:
        return None
    try:
        return paid(load_config(config_path).gateway.state(), manifest["build_id"])
    except (RaspberryError, OSError):
        return None


def cmd_export(args: argparse.Namespace) -> int:
    formats = FORMATS if args.format == "all" else (args.format,)
    exported = export_build(args.output_dir, args.build_id, args.out, formats)
    for fmt, path in exported["paths"].items():
        print(f"{fmt}: {path}")
    report = Folder(args.out).url("export_report.json")
    print(f"{exported['report']['rows_out']} rows; report: {report}")
    return 0


def _print(summary: dict[str, Any], manifest: Manifest, paid_when: str) -> None:
    for line in summary_lines(summary, manifest, paid_when):
        print(line)
    last = (manifest.get("runs") or [{}])[-1]
    report = BuildStore(last.get("output_dir", "."), manifest["build_id"]).files
    if report.exists(REPORT_NAME):
        print(f"report: {report.url(REPORT_NAME)}")
