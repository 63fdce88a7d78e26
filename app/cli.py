"""The `raspberry` command: build, rerun, serve, alerts, status, export, eval, verify, cache, sim.

A thin layer over the core's calls; the build commands are in raspberry_app/build.py, and their
exit codes are described there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from raspberry_app import evaluation, reward, show, train
from raspberry_app.build import cmd_build, cmd_export, cmd_rerun, cmd_status
from raspberry_app.estimate import cmd_estimate
from raspberry_app.init import cmd_init
from raspberry_app.settings import prefect_env

from raspberry.errors import RaspberryError
from raspberry.stages import registry
from raspberry.stages.config import load_config
from raspberry.stages.sft.export import FORMATS


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

    target = args.path or load_config(args.config).gateway.state()
    if "://" not in target and not Path(target).exists():
        raise RaspberryError(f"no request cache at {target}: run a build first, or pass --path")
    stats = RequestCache(target).stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    size = f", {stats['size_mb']} MB" if stats["size_mb"] is not None else ""
    print(f"cache {stats['path']}: {stats['responses']} responses{size}")
    print(
        f"  {'model':<28} {'responses':>9} {'tokens in':>12} {'cache read':>12} "
        f"{'cache write':>12} {'tokens out':>12} {'cost $':>10}"
    )
    for model, m in stats["models"].items():
        print(
            f"  {model:<28} {m['responses']:>9} {m['tokens_in']:>12,} "
            f"{m['tokens_cache_read']:>12,} {m['tokens_cache_write']:>12,} "
            f"{m['tokens_out']:>12,} {m['cost_usd']:>10.4f}"
        )
    for build, b in stats["builds"].items():
        unconfirmed = (
            f" (up to ${b['unconfirmed_usd']:.4f} of it unconfirmed: in flight when a process died)"
            if b["unconfirmed_usd"]
            else ""
        )
        print(
            f"  build {build}: paid for {b['responses_paid']} responses, "
            f"${b['cost_usd']:.4f}{unconfirmed}"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from raspberry.pipeline.preflight import preflight

    config = load_config(args.config)
    preflight(config, registry.names(), config.output_dir)
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

    url = push_build(
        args.output_dir,
        args.build_id,
        args.repo,
        private=args.private,
        revision=args.revision,
        allow_partial=args.allow_partial,
    )
    print(f"pushed build {args.build_id} to {args.repo}: {url}")
    return 0


def cmd_sim_serve(args: argparse.Namespace) -> int:
    from raspberry_sim.config import from_flags
    from raspberry_sim.server import serve

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


def _executor_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        metavar="local|dask|dask://HOST:PORT",
        help="where shard tasks run (default: the config's run.executor): this process's "
        "threads, a local Dask cluster, or a running Dask scheduler",
    )
    parser.add_argument(
        "--workers", type=int, help="worker processes of a local Dask cluster (run.workers)"
    )


def _command(sub: Any, name: str, summary: str, example: str, func: Any) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, a description and an example in its --help."""
    command = sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.set_defaults(func=func)
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raspberry", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action="version", version=f"raspberry {metadata.version('raspberry')}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build_id = "the build id (a folder under --output-dir)"
    builds = "where the build is (default data/builds)"
    as_json = "end with one JSON object on its own line"

    build = _command(sub, "build", "run a build through Prefect",
                     "raspberry build --config configs/demo.yaml --stages candidates,questions",
                     cmd_build)  # fmt: skip
    build.add_argument("--config", required=True, help="YAML build config")
    build.add_argument(
        "--build-id", help="default: <config name>-<date in the schedule's timezone>"
    )
    build.add_argument("--output-dir", help="default: the config's output_dir (data/builds)")
    build.add_argument("--stages", help=f"comma-separated subset of {','.join(registry.names())}")
    _executor_flags(build)
    build.add_argument("--json", action="store_true", help=as_json)
    build.add_argument(
        "--dry-run", action="store_true", help="send nothing: print what the build would cost"
    )
    build.add_argument("--pilot", type=int, help="with --dry-run: build N questions first")

    est = _command(sub, "estimate",
                   "what a build would ask and cost, per stage and role, before paying",
                   "raspberry estimate --config configs/claude.yaml --pilot 20 --json",
                   cmd_estimate)  # fmt: skip
    est.add_argument("--config", required=True, help="YAML build config")
    est.add_argument("--pilot", type=int, help="build about N questions for real first, and "
                     "estimate from what they measured")  # fmt: skip
    est.add_argument("--json", action="store_true", help=as_json)

    rerun = _command(sub, "rerun",
                     "run a build again: only its failed or missing shards are computed",
                     "raspberry rerun demo-20261202", cmd_rerun)  # fmt: skip
    rerun.add_argument("build_id", help=build_id)
    rerun.add_argument("--output-dir", default="data/builds", help=builds)
    _executor_flags(rerun)
    rerun.add_argument("--json", action="store_true", help=as_json)

    serve = _command(sub, "serve", "serve the nightly build on its schedule from here",
                     "raspberry serve --config configs/demo.yaml", cmd_serve)  # fmt: skip
    serve.add_argument("--config", required=True, help="YAML build config (its schedule section)")

    alerts = _command(sub, "alerts", "create the Prefect automations that alert a webhook",
                      "RASPBERRY_ALERT_WEBHOOK=https://... raspberry alerts",
                      cmd_alerts)  # fmt: skip
    alerts.add_argument(
        "--webhook-env",
        default="RASPBERRY_ALERT_WEBHOOK",
        help="environment variable holding the webhook URL",
    )
    alerts.add_argument("--deployment", default="nightly-build", help="the deployment to watch")
    alerts.add_argument(
        "--stale-hours", type=float, default=26.0, help="alert when no nightly completed this long"
    )

    status = _command(sub, "status", "what a build has done, from its manifest",
                      "raspberry status demo-20261202 --json", cmd_status)  # fmt: skip
    status.add_argument("build_id", help=build_id)
    status.add_argument("--output-dir", default="data/builds", help=builds)
    status.add_argument("--json", action="store_true", help="print the summary as JSON")

    show.add_parser(sub, _command)
    train.add_parser(sub, _command)

    init = _command(sub, "init", "write a starter project: the offline demo config, prompts, "
                    "sample questions and real-provider configs", "raspberry init my-data",
                    cmd_init)  # fmt: skip
    init.add_argument("folder", help="a new folder, or one without a raspberry.yaml")
    export = _command(sub, "export", "write a build's export files again, no model calls",
                      "raspberry export demo-20261202 --out /tmp/exports --format openai_chat",
                      cmd_export)  # fmt: skip
    export.add_argument("build_id", help=build_id)
    export.add_argument(
        "--format", choices=[*FORMATS, "all"], default="all", help="one format, or all"
    )
    export.add_argument("--out", required=True, help="folder for the files")
    export.add_argument("--output-dir", default="data/builds", help=builds)

    push = _command(sub, "push",
                    "upload a build's exports and card to a Hugging Face dataset repo as one "
                    "commit (token from HF_TOKEN)",
                    "raspberry push demo-20261202 --repo my-org/raspberry-demo --private",
                    cmd_push)  # fmt: skip
    push.add_argument("build_id", help=build_id)
    push.add_argument("--repo", required=True, help="the dataset repo, ORG/NAME")
    push.add_argument("--private", action="store_true", help="make the repo private if new")
    push.add_argument("--revision", help="a branch to commit to (default: main)")
    push.add_argument("--allow-partial", action="store_true",
                      help="push a build that fell short (a stage kept no rows or dropped more "
                           "than run.max_drop_share)")  # fmt: skip
    push.add_argument("--output-dir", default="data/builds", help=builds)

    evaluation.add_parser(sub, _command)

    verify = _command(sub, "verify", "check one answer against a verification spec",
                      """raspberry verify --spec '{"kind": "math", "reference": "1/2"}' """
                      "--answer 'Final answer: 0.5'", cmd_verify)  # fmt: skip
    verify.add_argument("--spec", required=True, help="the spec as JSON, as stored in questions")
    verify.add_argument("--answer", required=True, help="the answer text; '-' reads stdin")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")

    cache = sub.add_parser("cache", help="the durable request cache",
                           description="The durable request cache.")  # fmt: skip
    cache_sub = cache.add_subparsers(dest="cache_command", required=True)
    cache_stats = _command(cache_sub, "stats", "responses, tokens and cost per model and build",
                           "raspberry cache stats --config configs/demo.yaml",
                           cmd_cache_stats)  # fmt: skip
    where = cache_stats.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the cache named by this build config")
    where.add_argument("--path", help="a cache file, or the gateway state's database URL")
    cache_stats.add_argument("--json", action="store_true", help="print the figures as JSON")

    reward.add_parser(sub, _command)

    sim = sub.add_parser("sim", help="the offline simulated model server",
                         description="The offline simulated model server.")  # fmt: skip
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    sim_serve = _command(sim_sub, "serve", "serve the simulated OpenAI and Anthropic APIs on "
                         "127.0.0.1", "raspberry sim serve --port 8700 --latency-ms 30",
                         _quiet_on_ctrl_c(cmd_sim_serve))  # fmt: skip
    from raspberry_sim.config import add_flags  # the flags are the sim: section's settings

    sim_serve.add_argument("--port", type=int, default=8700, help="0 picks a free port")
    add_flags(sim_serve)
    sim_serve.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the process that started it dies"
    )
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
