"""The `raspberry` command: build, rerun, serve, alerts, status, export, eval, verify, cache, sim.

A thin layer over the core's calls; the build commands are in raspberry_app/build.py, and their
exit codes are described there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from raspberry_app.build import cmd_build, cmd_export, cmd_rerun, cmd_status
from raspberry_app.settings import prefect_env

from raspberry import pipeline
from raspberry.config import load_config
from raspberry.errors import RaspberryError
from raspberry.llm.config import resolve_api_key
from raspberry.sft.export import FORMATS


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
    prefect_env()
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
    prefect_env()
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
    prefect_env()
    from raspberry_flows.alerts import create_alerts

    for automation in create_alerts(url, args.deployment, args.stale_hours):
        print(f"automation '{automation.name}' ({automation.id}): {automation.description}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from raspberry.hub import push_build

    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise RaspberryError(
            "HF_TOKEN is not set: put a Hugging Face token with write access in the environment "
            "(it is never read from the command line or written anywhere)"
        )
    url = push_build(
        args.output_dir,
        args.build_id,
        args.repo,
        token,
        private=args.private,
        revision=args.revision,
    )
    print(f"pushed build {args.build_id} to {args.repo}: {url}")
    return 0


def cmd_sim_serve(args: argparse.Namespace) -> int:
    from raspberry.sim.config import from_flags
    from raspberry.sim.server import serve

    serve(from_flags(args), port=args.port, exit_with_parent=args.exit_with_parent)
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

    push = sub.add_parser(
        "push",
        help="upload a build's exports to the Hugging Face Hub (token from HF_TOKEN)",
        description="Upload <build>/exports/ (files and dataset card) to a Hub dataset repo as "
        "one commit, making the repo and branch when missing. Example: raspberry push "
        "demo-20261202 --repo my-org/raspberry-demo --private",
    )
    push.add_argument("build_id")
    push.add_argument("--repo", required=True, help="the dataset repo, ORG/NAME")
    push.add_argument("--private", action="store_true", help="make the repo private if new")
    push.add_argument("--revision", help="a branch to commit to (default: main)")
    push.add_argument("--output-dir", default="data/builds", help="where the build is")
    push.set_defaults(func=cmd_push)

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
    from raspberry.sim.config import add_flags  # the flags are the sim: section's settings

    add = sim_serve.add_argument
    add("--port", type=int, default=8700, help="0 picks a free port")
    add_flags(sim_serve)
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
