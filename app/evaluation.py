"""`raspberry eval`: models measured on the same questions, paired, through the evaluation flow.

The questions: a benchmark file (`--benchmark`), a build's validation split (`--build`), or a
fresh held-out set of a build's procedural tasks (`--build --heldout N`). Every model after the
first is compared with the first: the difference of accuracy with a paired bootstrap interval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from raspberry_app.settings import prefect_env

from raspberry.benchmark_files import BenchmarkItem, read_benchmark, write_items
from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError
from raspberry.eval_sets import heldout_items, validation_items
from raspberry.llm.config import resolve_api_key
from raspberry.prompts import load_prompt
from raspberry.report.page import write_report
from raspberry.stages.config import BuildConfig, load_config


def _questions(args: argparse.Namespace, config: BuildConfig) -> tuple[list[BenchmarkItem], str]:
    """The questions and what to call them."""
    if bool(args.benchmark) == bool(args.build):
        raise RaspberryError(
            "give --benchmark FILE, or --build BUILD (its validation split; with --heldout N, "
            "N new questions of each of its tasks)"
        )
    if args.heldout is not None and (args.benchmark or args.heldout < 1):
        raise RaspberryError("--heldout N goes with --build and takes 1 or more questions a task")
    if args.benchmark:
        return read_benchmark(args.benchmark), Path(args.benchmark).stem
    store = BuildStore(args.builds_dir, args.build)
    store.manifest()  # one clear error when there is no such build
    if args.heldout:
        return heldout_items(config, store, args.heldout), f"{args.build}-heldout"
    return validation_items(store), f"{args.build}-validation"


def cmd_eval(args: argparse.Namespace) -> int:
    config = load_config(args.config)
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
    items, called = _questions(args, config)
    if not items:
        raise RaspberryError(f"no questions to ask in {called}")
    eval_id = args.eval_id or f"{called}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    questions = (
        Path(args.benchmark)
        if args.benchmark
        else Path(args.output_dir) / eval_id / "questions.jsonl"
    )
    if not args.benchmark:
        write_items(questions, items)
    prefect_env()
    from raspberry_flows.eval import evaluate_benchmark  # imported late: Prefect's settings

    summary = evaluate_benchmark(
        config_path=str(Path(args.config).resolve()), benchmark_path=str(questions),
        models=models, runs=args.runs, eval_id=eval_id, output_dir=args.output_dir,
    )  # fmt: skip
    if args.build:
        store = BuildStore(args.builds_dir, args.build)
        store.files.write_text(f"evals/{eval_id}.json", json.dumps(summary, indent=2))
        write_report(store, store.manifest())  # its Evaluation section
    for line in eval_lines(summary, called, len(items), args.runs):
        print(line)
    print(f"results: {Path(args.output_dir) / eval_id}")
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


def eval_lines(summary: dict[str, Any], called: str, questions: int, runs: int) -> list[str]:
    out = [
        f"\neval {summary['eval_id']}: {questions} questions of {called}, {runs} run(s)",
        f"  {'model':<14} {'accuracy':>8}  {'95% CI':<15} {'format':>6} {'tokens':>7}",
    ]
    for name, r in summary["models"].items():
        ci = f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        out.append(
            f"  {name:<14} {r['mean']:>8.3f}  {ci:<15} {r['format']:>6.2f} "
            f"{r['mean_tokens_out']:>7.1f}"
        )
    for pair, c in summary["comparisons"].items():
        low, high = c["difference_ci95"]
        out.append(
            f"  {pair}: accuracy {c['difference']:+.3f} [{low:+.3f}, {high:+.3f}] (paired, "
            f"{c['questions']} questions); format {c['format_difference']:+.3f}"
        )
    groups = sorted({g for r in summary["models"].values() for g in r["by_group"]})
    if len(groups) > 1:
        out.append("  by group: " + "; ".join(
            f"{g} " + ", ".join(f"{m} {r['by_group'].get(g, 0):.2f}"
                               for m, r in summary["models"].items())
            for g in groups
        ))  # fmt: skip
    return out


def add_parser(sub: argparse._SubParsersAction, command: Any) -> None:
    ev = command(sub, "eval", "measure models on the same questions, paired",
                 "raspberry eval --config configs/demo.yaml --build demo-20261207 --heldout 50 "
                 "--role base --role tuned", cmd_eval)  # fmt: skip
    ev.add_argument("--config", required=True, help="YAML config with the models")
    ev.add_argument("--benchmark", help="a SimpleBench JSON or JSONL file")
    ev.add_argument("--build", help="a build: its validation split, or --heldout new questions")
    ev.add_argument("--heldout", type=int, help="with --build: N new questions of each task")
    ev.add_argument("--builds-dir", default="data/builds", help="the folder of builds")
    ev.add_argument("--role", action="append", help="a role or eval.models name (repeatable); "
                    "every one after the first is compared with the first")  # fmt: skip
    ev.add_argument("--runs", type=int, default=3, help="samples of every question (K)")
    ev.add_argument("--eval-id", help="default: <questions>-<UTC time>")
    ev.add_argument("--output-dir", default="data/evals", help="where results go")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON last")
