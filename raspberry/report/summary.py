"""What a build run says as it ends, and `status` says of a build: the summary (per stage, what
it paid, its exports) and its lines, read from the manifest through report.py's tables."""

from __future__ import annotations

import json
import posixpath
import textwrap
from typing import Any

from raspberry.build_files.manifest import Manifest
from raspberry.figures import tally
from raspberry.llm.books import Paid
from raspberry.llm.cost import money
from raspberry.report.tables import (
    RUN_COUNTERS,
    build_state,
    funnel_line,
    run_lines,
    stage_names,
    stage_reports,
    stage_specs,
    stage_totals,
)

UNCONFIRMED = (
    "up to {} of it unconfirmed: requests in flight when a process died, counted at the most "
    "they could cost (the provider's bill says what they did)"
)


def shortfalls(stages: dict[str, Any], max_drop_share: float) -> list[str]:
    """Where a build that ran fell short, a line each, with the main drop reason: the first stage
    left with no rows (the stages after it are empty because of it), and each stage before it
    that dropped more than `max_drop_share` of the rows it read. `stages`: build_summary's."""
    said = []
    for name in (n for n in stage_names() if n in stages):
        s = stages[name]
        drops = s.get("report", {}).get("drops", {})
        top = max(drops.items(), key=lambda kv: kv[1], default=None)
        reason = f"; main reason: {top[0]} ({top[1]} of {s['rows_in']})" if top else ""
        if s["rows_out"] == 0:
            said.append(f"stage {name} kept no rows of {s['rows_in']}{reason}")
            break
        if s["rows_in"] and 1 - s["rows_out"] / s["rows_in"] > max_drop_share:
            said.append(
                f"stage {name} kept {s['rows_out']} of {s['rows_in']} rows, more than "
                f"run.max_drop_share ({max_drop_share:.0%}) dropped{reason}"
            )
    return said


def recorded_paid(manifest: Manifest) -> Paid:
    """What the build paid as its latest run that ended recorded it."""
    for run in (manifest.get("runs") or [])[::-1]:
        if "paid_usd" in run:
            return Paid(run["paid_usd"], run.get("unconfirmed_usd", 0.0))
    return Paid(0.0, 0.0)


def build_summary(
    manifest: Manifest, run: dict[str, Any] | None, paid: Paid | None = None
) -> dict[str, Any]:
    """What `build --json` and `status --json` print: per stage totals of the build, with the
    requests and cost of `run` (this run) where given, what the build paid over all its runs
    (the ledger's figure: `paid`, else the latest run's record of it) and how much of that is
    unconfirmed, and the latest exports."""
    totals = stage_totals(manifest)
    reports = stage_reports(manifest)
    runs = manifest.get("runs") or []
    paid = paid or recorded_paid(manifest)
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
            **{k: source.get(k, 0) for k in RUN_COUNTERS},
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
        "paid_usd": round(paid.usd, 6),
        "unconfirmed_usd": round(paid.unconfirmed_usd, 6),
        "stages": stages,
        # The latest run that exported (a run of some stages only may not have).
        **next(
            (
                {"exports": r["exports"], "export_report": r.get("export_report", {})}
                for r in ([run] if run else []) + runs[::-1]
                if r.get("exports")
            ),
            {"exports": {}, "export_report": {}},
        ),
    }


def stage_line(stage: str, totals: dict[str, Any]) -> str:
    """One stage's run in a line, for the run log."""
    return (
        f"{stage}: {totals['shards_done']} shard(s) done ({totals['shards_cached']} from the "
        f"cache), {totals['shards_failed']} failed; rows {totals['rows_in']} → "
        f"{totals['rows_out']}"
        + (f", {totals['rows_failed']} failed" if totals.get("rows_failed") else "")
        + f"; {totals['requests_sent']} requests sent, {totals['cache_hits']} from the cache; "
        f"{money(totals['cost_usd'])}"
    )


SUMMARY_WIDTH = 100  # a terminal narrower than the old 150-column table wrapped it badly


def summary_lines(summary: dict[str, Any], manifest: Manifest, paid_when: str) -> list[str]:
    """The build summary as the terminal shows it."""
    out: list[str] = []
    print = out.append  # noqa: A001 - the lines are collected, not printed
    runs = len(manifest.get("runs", []))
    print(f"build {summary['build_id']}: {summary['state']} ({runs} run{'s' * (runs != 1)})")
    # Within 100 columns: a narrow terminal must not wrap it.
    print(
        f"  {'stage':<10} {'shards':>9} {'cached':>6} {'rows in → out':>13} {'requests':>8} "
        f"{'cached':>6} {'prompt cache r/w':>17} {'cost':>9}"
    )
    for stage, t in summary["stages"].items():
        shards = f"{t['shards_done']} ok/{t['shards_failed']} ✗"
        rows = f"{t['rows_in']} → {t['rows_out']}"
        prompt_cache = f"{t['tokens_cache_read']:,}/{t['tokens_cache_write']:,}"
        print(
            f"  {stage:<10} {shards:>9} {t['shards_cached']:>6} {rows:>13} "
            f"{t['requests_sent']:>8} {t['cache_hits']:>6} {prompt_cache:>17} "
            f"{money(t['cost_usd']):>9}"
        )
        for shard, error in t.get("failed", {}).items():
            print(f"  failed: {stage}/{shard}: {error}")
        for shard, rows in t.get("failed_rows", {}).items():
            for label, reason in list(rows.items())[:5]:
                print(f"  row failed: {stage}/{shard}: {label}: {reason}")
            if len(rows) > 5:
                print(f"  ... and {len(rows) - 5} more rows of {stage}/{shard}")
    this_run = sum(t["cost_usd"] for t in summary["stages"].values())
    print(
        f"paid: {money(summary['paid_usd'])} for this build over {runs} run{'s' * (runs != 1)} "
        f"(the request ledger, interrupted runs included); stages {money(this_run)} ({paid_when})"
    )
    if summary["unconfirmed_usd"]:
        print(f"  {UNCONFIRMED.format(money(summary['unconfirmed_usd']))}")
    print(
        f"  (shards and requests cached: taken from the cache; requests, tokens and cost: "
        f"{paid_when})"
    )
    exported = summary["stages"].get(stage_specs()[-1].name, {}).get("rows_out", 0)
    if exported and summary["paid_usd"]:
        print(
            f"cost per exported row: {money(summary['paid_usd'] / exported)} "
            f"({money(summary['paid_usd'])} over {exported} rows)"
        )
    print(f"funnel: {funnel_line(manifest)}")
    for spec in stage_specs():
        for line in spec.lines(summary["stages"][spec.name]["report"]):
            print(line)
    if report := summary["export_report"]:
        checks = report.get("openai_chat_checks", {})
        splits = "; ".join(
            f"{split} {sum(by_source.values())} ({tally(by_source)})"
            for split, by_source in report["splits"].items()
            if by_source
        )
        print(
            f"exports: {report['rows_out']} rows ({splits}), "
            f"{report.get('preference_pairs', 0)} preference pairs, "
            f"{report['dropped_over_token_limit']} over the token limit; OpenAI format checks "
            f"{'passed' if checks.get('ok') else 'FAILED: ' + json.dumps(checks)}"
        )
    if summary["exports"]:
        print(f"dataset: {posixpath.dirname(next(iter(summary['exports'].values())))}")
    for line in run_lines(manifest):
        print(line)
    return [
        wrapped
        for line in out
        for wrapped in (
            textwrap.wrap(line, SUMMARY_WIDTH, subsequent_indent="    ", break_long_words=False,
                          break_on_hyphens=False)
            if len(line) > SUMMARY_WIDTH
            else [line]
        )
    ]  # fmt: skip
