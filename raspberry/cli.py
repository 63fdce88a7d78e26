"""The `raspberry` command: build, rerun, serve, alerts, status, export, eval, verify, cache, sim.

Exit codes: 0 every shard done; 1 some shard failed; 2 bad input (config, prompts, keys, build);
3 the disk is full (everything already written is intact: free space and rerun the build id).
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

from raspberry import pipeline
from raspberry.build_report import REPORT_NAME
from raspberry.config import BuildConfig, load_config, resolve_api_key
from raspberry.errors import DiskFull, RaspberryError, disk_full
from raspberry.report import build_state, funnel_line, run_lines, stage_reports, stage_totals
from raspberry.sft.export import FORMATS
from raspberry.store import (
    build_dir,
    build_lock,
    build_writer,
    changed_shards,
    check_build_id,
    read_manifest,
)


def _prefect_env() -> None:
    """Settings Prefect reads at import: a patient ephemeral server (its first start on a small
    machine takes ~20 s), no analytics."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _parse_stages(text: str | None) -> list[str]:
    if not text:
        return pipeline.names()
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages:
        raise RaspberryError(f"--stages {text!r} names no stage; choose from {pipeline.names()}")
    unknown = [s for s in stages if s not in pipeline.names()]
    if unknown:
        raise RaspberryError(
            f"unknown stage(s) {unknown} in --stages; choose from {pipeline.names()}"
        )
    return stages


def _summary(manifest: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    totals = stage_totals(manifest)
    reports = stage_reports(manifest)
    stages = {}
    for stage, t in totals.items():
        this_run = (run or {}).get("stages", {}).get(stage)
        # requests_sent and friends describe this run when there is one (0 for cached shards).
        source = this_run if this_run is not None else t
        stages[stage] = {
            "shards_done": t["shards_done"],
            "shards_failed": t["shards_failed"],
            "rows_in": t["rows_in"],
            "rows_out": t["rows_out"],
            **{
                k: source.get(k, 0)
                for k in ("requests_sent", "cache_hits", "tokens_in", "tokens_out", "cost_usd")
            },
            "shards_cached": (this_run or {}).get("shards_cached", 0),
            "report": reports[stage],
        }
        if t["failed"]:
            stages[stage]["failed"] = t["failed"]
        if t["failed_rows"]:
            stages[stage]["failed_rows"] = t["failed_rows"]
    return {
        "build_id": manifest["build_id"],
        # A build run reports its own state (it may have run some stages only); status the build's.
        "state": run["state"] if run else build_state(manifest),
        "stages": stages,
        # The latest run that exported (a run of some stages only may not have).
        **next(
            (
                {"exports": r["exports"], "export_report": r.get("export_report", {})}
                for r in ([run] if run else []) + (manifest.get("runs") or [])[::-1]
                if r.get("exports")
            ),
            {"exports": {}, "export_report": {}},
        ),
    }


def cmd_build(args: argparse.Namespace) -> int:
    from raspberry.preflight import preflight  # imports the question sources: only when building

    config = load_config(args.config)
    stages = _parse_stages(args.stages)
    output_dir = args.output_dir or config.output_dir
    build_id = check_build_id(args.build_id or config.build_id_for(dt.datetime.now(dt.UTC)))
    preflight(config, stages, output_dir, build_id)
    config_path = str(Path(args.config).resolve())
    with build_lock(output_dir, build_id):  # refused at once when another process writes it
        return _run_build(config, config_path, build_id, output_dir, stages, args.json)


def cmd_rerun(args: argparse.Namespace) -> int:
    """The build again with the config, stages and output folder its last run used: failed or
    missing shards are computed, the rest come from the cache once their files check out."""
    from raspberry.preflight import preflight

    manifest = read_manifest(args.output_dir, args.build_id)
    last = (manifest.get("runs") or [{}])[-1]
    if "config_path" not in last:
        raise RaspberryError(
            f"build '{args.build_id}' has no recorded run to repeat; run it with "
            f"`raspberry build --config CONFIG --build-id {args.build_id}`"
        )
    config_path, stages = last["config_path"], last["selected"]
    config = load_config(config_path)
    changed = [s for s in stages if manifest["config_hash"].get(s) != pipeline.stage(s).key(config)]
    if changed:
        raise RaspberryError(
            f"{config_path} changed since build '{args.build_id}' last ran: stages {changed} would "
            "be computed again, not rerun; if that is what you want, run `raspberry build "
            f"--config {config_path} --build-id {args.build_id}`"
        )
    # The folder the manifest was found in, wherever the build ran before (it may have moved).
    preflight(config, stages, args.output_dir, args.build_id)
    with build_lock(args.output_dir, args.build_id):
        return _run_build(config, config_path, args.build_id, args.output_dir, stages, args.json)


def _run_build(
    config: BuildConfig,
    config_path: str,
    build_id: str,
    output_dir: str,
    stages: list[str],
    as_json: bool,
) -> int:
    _prefect_env()
    from raspberry_flows.server import api_server

    with api_server() as api_url, _interruptible(output_dir, build_id, api_url):
        from raspberry_flows.build import (
            build_dataset,  # imported late: Prefect reads its settings then
        )

        state = build_dataset(
            config_path=config_path,
            build_id=build_id,
            output_dir=output_dir,
            stages=stages,
            return_state=True,
        )
    manifest = read_manifest(output_dir, build_id)
    _raise_if_disk_full(state.message or "", manifest, output_dir, config.gateway.cache_path)
    summary = _summary(manifest, (manifest.get("runs") or [None])[-1])
    print()
    _report(summary, manifest, "this run")
    if as_json:
        print(json.dumps(summary), flush=True)
    return 0 if summary["state"] == "completed" else 1


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

            runs = read_manifest(output_dir, build_id).get("runs") or [{}]
            mark_interrupted(runs[-1].get("flow_run_id"), timeout_s=3.0)
        os._exit(130)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _raise_if_disk_full(
    message: str, manifest: dict[str, Any], output_dir: str, cache_path: str
) -> None:
    """A build that stopped on a full disk ends with one line saying so (exit 3), not a summary
    of shards that could not even record why they failed."""
    errors = [message] + [
        e.get("error", "") for shards in manifest["stages"].values() for e in shards.values()
    ]
    if any(disk_full(e) for e in errors):
        raise DiskFull(
            f"the disk is full under {Path(output_dir).resolve()} or {Path(cache_path).resolve()}; "
            f"every file written is intact: free space and rerun build '{manifest['build_id']}'"
        )


def cmd_status(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.output_dir, args.build_id)
    runs = manifest.get("runs") or [{}]
    if runs[-1].get("state") == "running" and not build_writer(args.output_dir, args.build_id):
        runs[-1]["state"] = "interrupted"  # its process is gone: `raspberry rerun` resumes it
    summary = _summary(manifest, None)
    changed = changed_shards(args.output_dir, manifest)
    if changed:
        summary["changed"] = changed
    if args.json:
        print(json.dumps(summary))
    else:
        _report(summary, manifest, "when computed")
        for name in changed:
            print(
                f"changed: {name}: its file is gone or no longer matches its fingerprint; "
                f"`raspberry rerun {args.build_id}` computes it again"
            )
    return 1 if summary["state"] == "failed" else 0


def _report(summary: dict[str, Any], manifest: dict[str, Any], paid_when: str) -> None:
    runs = len(manifest.get("runs", []))
    print(f"build {summary['build_id']}: {summary['state']} ({runs} run{'s' * (runs != 1)})")
    print(
        f"  {'stage':<10} {'shards':>9} {'rows in → out':>15} {'requests':>9} {'cached':>7} "
        f"{'cost $':>9}   (requests and cost: {paid_when})"
    )
    for stage, t in summary["stages"].items():
        shards = f"{t['shards_done']} ok/{t['shards_failed']} ✗"
        rows = f"{t['rows_in']} → {t['rows_out']}"
        print(
            f"  {stage:<10} {shards:>9} {rows:>15} {t['requests_sent']:>9} "
            f"{t['cache_hits']:>7} {t['cost_usd']:>9.4f}"
        )
        for shard, error in t.get("failed", {}).items():
            print(f"  failed: {stage}/{shard}: {error}")
        for shard, rows in t.get("failed_rows", {}).items():
            for label, reason in list(rows.items())[:5]:
                print(f"  row failed: {stage}/{shard}: {label}: {reason}")
            if len(rows) > 5:
                print(f"  ... and {len(rows) - 5} more rows of {stage}/{shard}")
    print(f"funnel: {funnel_line(manifest)}")
    for spec in pipeline.stages():
        for line in spec.lines(summary["stages"][spec.name]["report"]):
            print(line)
    if report := summary["export_report"]:
        checks = report.get("openai_chat_checks", {})
        print(
            f"exports: {report['rows_out']} rows {report['splits']}, "
            f"{report.get('preference_pairs', 0)} preference pairs, "
            f"{report['dropped_over_token_limit']} over the token limit; OpenAI format checks "
            f"{'passed' if checks.get('ok') else 'FAILED: ' + json.dumps(checks)}"
        )
    if summary["exports"]:
        print(f"dataset: {Path(summary['exports']['prompt_response']).parent}")
    for line in run_lines(manifest):
        print(line)
    last = (manifest.get("runs") or [{}])[-1]
    report = build_dir(last.get("output_dir", "."), manifest["build_id"]) / REPORT_NAME
    if report.exists():
        print(f"report: {report}")


def cmd_export(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.output_dir, args.build_id)
    spec = next(s for s in pipeline.stages() if s.exports)
    if "export" not in manifest:
        raise RaspberryError(
            f"build '{args.build_id}' has no export settings: its {spec.name} stage has not run; "
            "run `raspberry build` first"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise RaspberryError(f"--out {out} is a file; give a folder for the export files")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RaspberryError(f"--out {out}: cannot make the folder ({exc.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RaspberryError(f"--out {out} is not writable; give another folder")
    shards = manifest["stages"].get(spec.name, {}).values()
    if not any(entry["state"] == "done" for entry in shards):
        raise RaspberryError(
            f"build '{args.build_id}' has no completed {spec.name} shard to export"
        )
    formats = FORMATS if args.format == "all" else (args.format,)
    exported = spec.exports.write(  # type: ignore[union-attr]
        args.output_dir, args.build_id, manifest["export"], out, formats
    )
    for fmt, path in exported["paths"].items():
        print(f"{fmt}: {path}")
    print(f"{exported['report']['rows_out']} rows; report: {Path(args.out) / 'export_report.json'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from raspberry.benchmark_files import read_benchmark
    from raspberry.prompts import load_prompt

    config = load_config(args.config)
    items = read_benchmark(args.benchmark)
    models = args.role or ["teacher"]
    for name in models:
        try:
            model = config.model_for(name)
        except KeyError:
            raise RaspberryError(
                f"no model '{name}': choose a role in models {sorted(config.models)} "
                f"or a name in eval.models {sorted(config.eval.models)}"
            ) from None
        resolve_api_key(model.provider, config.providers[model.provider])
    load_prompt(config.prompts_path(), config.eval.prompt, set())
    if args.runs < 1:
        raise RaspberryError(f"--runs must be at least 1, not {args.runs}")
    eval_id = args.eval_id or f"{Path(args.benchmark).stem}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    _prefect_env()
    from raspberry_flows.eval import (
        evaluate_benchmark,  # imported late: Prefect reads its settings at import
    )

    summary = evaluate_benchmark(
        config_path=str(Path(args.config).resolve()),
        benchmark_path=str(Path(args.benchmark)),
        models=models,
        runs=args.runs,
        eval_id=eval_id,
        output_dir=args.output_dir,
    )
    print(f"\neval {eval_id}: {len(items)} questions from {args.benchmark}, {args.runs} runs")
    print(f"  {'model':<16} {'model ref':<28} {'accuracy per run':<26} {'mean':>6}  95% CI")
    for name, r in summary["models"].items():
        per_run = " ".join(f"{a:.3f}" for a in r["accuracy_per_run"])
        print(
            f"  {name:<16} {r['model_ref']:<28} {per_run:<26} {r['mean']:>6.3f}  "
            f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        )
    print(f"results: {Path(args.output_dir) / eval_id}")
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from raspberry.verify import check

    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        raise RaspberryError(
            f"--spec is not valid JSON ({exc.msg}); pass e.g. "
            """'{"kind": "math", "reference": "1/2"}'"""
        ) from None
    if not isinstance(spec, dict) or "kind" not in spec:
        raise RaspberryError('--spec must be a JSON object with a "kind"; see docs/verification.md')
    answer = sys.stdin.read() if args.answer == "-" else args.answer
    result = check(spec, answer)
    if args.json:
        print(result.model_dump_json())
    else:
        print(f"{'pass' if result.passed else 'fail'}: {result.reason}")
    return 0 if result.passed else 1


def cmd_cache_stats(args: argparse.Namespace) -> int:
    from raspberry.llm.cache import RequestCache

    path = Path(args.path or load_config(args.config).gateway.cache_path)
    if not path.exists():
        raise RaspberryError(f"no request cache at {path}: run a build first, or pass --path")
    cache = RequestCache(path)
    try:
        stats = cache.stats()
    finally:
        cache.close()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"cache {stats['path']}: {stats['responses']} responses, {stats['size_mb']} MB")
    print(f"  {'model':<28} {'responses':>9} {'tokens in':>12} {'tokens out':>12} {'cost $':>10}")
    for model, m in stats["models"].items():
        print(
            f"  {model:<28} {m['responses']:>9} {m['tokens_in']:>12,} {m['tokens_out']:>12,} "
            f"{m['cost_usd']:>10.4f}"
        )
    for build, b in stats["builds"].items():
        print(f"  build {build}: paid for {b['responses_paid']} responses, ${b['cost_usd']:.4f}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from raspberry.preflight import preflight

    config = load_config(args.config)
    preflight(config, pipeline.names(), config.output_dir)
    _prefect_env()
    from raspberry_flows.deployment import serve_nightly

    serve_nightly(str(Path(args.config).resolve()))
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    url = os.environ.get(args.webhook_env, "")
    if not url.startswith(("http://", "https://")):
        raise RaspberryError(
            f"set {args.webhook_env} to the webhook's URL (http:// or https://); it is read from "
            "the environment, never the command line, since such URLs often carry a token"
        )
    if not os.environ.get("PREFECT_API_URL"):
        raise RaspberryError(
            "PREFECT_API_URL is not set: alerts live on the Prefect server that runs the nightly "
            "build; point PREFECT_API_URL at it (e.g. http://127.0.0.1:4200/api)"
        )
    _prefect_env()
    from raspberry_flows.alerts import create_alerts

    for automation in create_alerts(url, args.deployment, args.stale_hours):
        print(f"automation '{automation.name}' ({automation.id}): {automation.description}")
    return 0


def cmd_sim_serve(args: argparse.Namespace) -> int:
    from raspberry.sim.batches import BatchFaults
    from raspberry.sim.roles import Behaviour
    from raspberry.sim.server import SimSettings, serve

    serve(
        SimSettings(
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            rpm=args.rpm,
            error_rate=args.error_rate,
            rate_limit_rate=args.rate_limit_rate,
            hang_rate=args.hang_rate,
            empty_rate=args.empty_rate,
            malformed_judge_rate=args.malformed_judge_rate,
            fail_containing=tuple(args.fail_containing),
            behaviour=Behaviour(
                seed=args.seed,
                wrong_first_prob=args.wrong_first_prob,
                wrong_retry_prob=args.wrong_retry_prob,
            ),
            batch=BatchFaults(
                delay_s=args.batch_delay_s,
                error_rate=args.batch_error_rate,
                expire_rate=args.batch_expire_rate,
            ),
        ),
        port=args.port,
        exit_with_parent=args.exit_with_parent,
    )
    return 0


def _quiet_on_ctrl_c(command: Any) -> Any:
    """A server stopped by Ctrl-C (or with its build's process group) stops without a word: the
    command it serves says what happened."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except KeyboardInterrupt:
            return 130

    return run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raspberry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="run a build through Prefect")
    build.add_argument("--config", required=True, help="YAML build config")
    build.add_argument(
        "--build-id", help="default: <config name>-<date in the schedule's timezone>"
    )
    build.add_argument("--output-dir", help="default: the config's output_dir (data/builds)")
    build.add_argument("--stages", help=f"comma-separated subset of {','.join(pipeline.names())}")
    build.add_argument("--json", action="store_true", help="end with one JSON summary line")
    build.set_defaults(func=cmd_build)

    rerun = sub.add_parser(
        "rerun", help="run a build again: only its failed or missing shards are computed"
    )
    rerun.add_argument("build_id")
    rerun.add_argument("--output-dir", default="data/builds", help="where the build is")
    rerun.add_argument("--json", action="store_true", help="end with one JSON summary line")
    rerun.set_defaults(func=cmd_rerun)

    serve = sub.add_parser("serve", help="serve the nightly build on its schedule from here")
    serve.add_argument("--config", required=True, help="YAML build config (its schedule section)")
    serve.set_defaults(func=cmd_serve)

    alerts = sub.add_parser("alerts", help="create the Prefect automations that alert a webhook")
    alerts.add_argument(
        "--webhook-env",
        default="RASPBERRY_ALERT_WEBHOOK",
        help="environment variable holding the webhook URL",
    )
    alerts.add_argument("--deployment", default="nightly-build")
    alerts.add_argument(
        "--stale-hours", type=float, default=26.0, help="alert when no nightly completed this long"
    )
    alerts.set_defaults(func=cmd_alerts)

    status = sub.add_parser("status", help="what a build has done, from its manifest")
    status.add_argument("build_id")
    status.add_argument("--output-dir", default="data/builds")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    export = sub.add_parser("export", help="write a build's export files again, no model calls")
    export.add_argument("build_id")
    export.add_argument("--format", choices=[*FORMATS, "all"], default="all")
    export.add_argument("--out", required=True, help="folder for the files")
    export.add_argument("--output-dir", default="data/builds", help="where the build is")
    export.set_defaults(func=cmd_export)

    ev = sub.add_parser("eval", help="measure models on a benchmark file")
    ev.add_argument("--config", required=True, help="YAML config with the models")
    ev.add_argument("--benchmark", required=True, help="SimpleBench JSON or JSONL file")
    ev.add_argument("--role", action="append", help="a role or eval.models name (repeatable)")
    ev.add_argument("--runs", type=int, default=3, help="samples of every question (K)")
    ev.add_argument("--eval-id", help="default: <benchmark name>-<UTC time>")
    ev.add_argument("--output-dir", default="data/evals")
    ev.add_argument("--json", action="store_true", help="end with one JSON summary line")
    ev.set_defaults(func=cmd_eval)

    verify = sub.add_parser("verify", help="check one answer against a verification spec")
    verify.add_argument("--spec", required=True, help="the spec as JSON, as stored in questions")
    verify.add_argument("--answer", required=True, help="the answer text; '-' reads stdin")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)

    cache = sub.add_parser("cache", help="the durable request cache")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True)
    cache_stats = cache_sub.add_parser("stats", help="responses, tokens and cost per model/build")
    where = cache_stats.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the cache named by this build config")
    where.add_argument("--path", help="a cache file")
    cache_stats.add_argument("--json", action="store_true")
    cache_stats.set_defaults(func=cmd_cache_stats)

    sim = sub.add_parser("sim", help="the offline simulated model server")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    sim_serve = sim_sub.add_parser("serve", help="serve on 127.0.0.1")
    add = sim_serve.add_argument
    add("--port", type=int, default=8700, help="0 picks a free port")
    add("--latency-ms", type=float, default=0.0)
    add("--jitter-ms", type=float, default=0.0)
    add("--rpm", type=int, default=None, help="requests/min, enforced per second")
    add("--error-rate", type=float, default=0.0, help="share of 500 answers")
    add("--rate-limit-rate", type=float, default=0.0, help="share of 429 answers")
    add("--hang-rate", type=float, default=0.0, help="share never answered")
    add("--empty-rate", type=float, default=0.0, help="share of empty completions")
    add("--malformed-judge-rate", type=float, default=0.0, help="share of judge JSON cut in half")
    add("--wrong-first-prob", type=float, default=0.4)
    add("--wrong-retry-prob", type=float, default=0.2)
    add("--batch-delay-s", type=float, default=0.2, help="until a batch ends")
    add("--batch-error-rate", type=float, default=0.0)
    add("--batch-expire-rate", type=float, default=0.0)
    add("--seed", type=int, default=0)
    add(
        "--fail-containing",
        action="append",
        default=[],
        help="answer 500 to every request whose messages contain this text (repeatable)",
    )
    add(
        "--exit-with-parent", action="store_true", help="stop when the process that started it dies"
    )
    sim_serve.set_defaults(func=_quiet_on_ctrl_c(cmd_sim_serve))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except RaspberryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; rerun the same build id to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
