"""`raspberry estimate` and `raspberry build --dry-run`: the cost before it is paid.

A dry run sends nothing and writes nothing. `--pilot N` first builds about N questions for real
(build id `<name>-pilot-N`) and estimates from what they measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from raspberry.errors import RaspberryError
from raspberry.llm.cost import money
from raspberry.pipeline.estimate import estimate
from raspberry.stages import registry
from raspberry.stages.config import BuildConfig, EstimateConfig, load_config


def _pilot(config: BuildConfig, n: int) -> tuple[EstimateConfig, dict[str, Any]]:
    from raspberry_app.build import new_build

    from raspberry.pipeline.pilot import measured, write_pilot_config
    from raspberry.report.tables import stage_reports

    folder = Path(config.output_dir).resolve() / "pilots"
    path = write_pilot_config(config, n, folder)
    build_id = f"{config.name}-pilot-{n}"
    print(f"pilot: building about {n} questions as {build_id} ({path})", flush=True)
    _, _, manifest = new_build(path, build_id, _all_stages(), None)
    pilot = load_config(path)
    assumptions, seen = measured(config, pilot, build_id, stage_reports(manifest))
    return assumptions, {"build_id": build_id, "config": str(path), **seen}


def _all_stages() -> list[str]:
    return registry.names()


def cmd_estimate(args: argparse.Namespace) -> int:
    from raspberry.pipeline.preflight import check_prices

    config = load_config(args.config)
    check_prices(config, registry.names())
    if args.pilot is not None and args.pilot < 1:
        raise RaspberryError(f"--pilot must be at least 1 question, not {args.pilot}")
    pilot: dict[str, Any] | None = None
    assumptions = None
    if args.pilot:
        assumptions, pilot = _pilot(config, args.pilot)
    result = estimate(config, assumptions)
    used = assumptions or config.estimate
    result["assumptions"] = used.model_dump()
    result["from"] = "pilot" if pilot else "config"
    if pilot:
        result["pilot"] = {k: v for k, v in pilot.items() if k != "responses_by_model"}
    for line in lines(config, result):
        print(line)
    if args.json:
        print(json.dumps(result), flush=True)
    return 0


def lines(config: BuildConfig, result: dict[str, Any]) -> list[str]:
    q = result["questions"]
    out = [
        f"estimate for {config.name}: {q['free']} questions from free sources, "
        f"{q['written']} to write; "
        + (
            f"assumptions measured by the pilot {result['pilot']['build_id']}"
            if result["from"] == "pilot"
            else "nothing sent, assumptions from the config"
        ),
        f"  {'stage':<11} {'role':<16} {'requests':>9} {'tokens in':>12} {'cache read':>11} "
        f"{'cache write':>11} {'tokens out':>11} {'cost':>10}  {'low – high':>21}",
    ]
    for stage, s in result["stages"].items():
        for role, r in s["roles"].items():
            how = " (batch)" if r["batch"] else ""
            out.append(
                f"  {stage:<11} {role:<16} {r['requests']:>9,} {r['tokens_in']:>12,} "
                f"{r['tokens_cache_read']:>11,} {r['tokens_cache_write']:>11,} "
                f"{r['tokens_out']:>11,} {money(r['cost_usd']):>10}"
                f"  {money(r['low_usd']) + ' – ' + money(r['high_usd']):>21}{how}"
            )
    a = result["assumptions"]
    out += [
        f"total: {money(result['estimate_usd'])} (low {money(result['estimate_low_usd'])}, "
        f"high {money(result['estimate_high_usd'])})",
        f"assumed: teacher right at the first turn {a['solved_first_turn']:.0%}, at each later "
        f"turn {a['solved_later_turn']:.0%}; written answers confirmed {a['written_kept']:.0%}; "
        "output tokens "
        + ", ".join(f"{k} {v}" for k, v in a["output_tokens"].items() if k in config.models),
    ]
    if result["from"] == "pilot":
        section = {"estimate": {k: v for k, v in a.items() if k != "output_tokens"}}
        section["estimate"]["output_tokens"] = {
            k: v for k, v in a["output_tokens"].items() if k in config.models
        }
        out.append("measured by the pilot, as the config's estimate: section:")
        out += ["  " + line for line in yaml.safe_dump(section, sort_keys=False).splitlines()]
    budget = config.budget.max_usd
    over = next(
        (name for key, name in (("estimate_usd", "the estimate"),
                                ("estimate_high_usd", "the high estimate"))
         if budget is not None and result[key] > budget),
        None,
    )  # fmt: skip
    if over:
        out.append(
            f"note: {over} is over budget.max_usd ({money(budget)}); the build would stop there "
            "and go on from the request cache once it is raised"
        )
    return out
