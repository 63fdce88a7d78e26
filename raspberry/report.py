"""Summaries of a build read from its manifest: stage totals, state, the funnel line."""

from __future__ import annotations

import json
import posixpath
import textwrap
from typing import TYPE_CHECKING, Any

from raspberry.figures import tally
from raspberry.llm.books import Paid
from raspberry.llm.cost import money
from raspberry.store import BuildStore

if TYPE_CHECKING:
    from raspberry.pipeline import Stage

COUNTERS = (
    "rows_in",
    "rows_out",
    "requests_sent",
    "cache_hits",
    "tokens_in",
    "tokens_out",
    "tokens_cache_read",
    "tokens_cache_write",
    "tokens_thinking",
    "cost_usd",
)
# What a run's stage record reports of its gateway, in the summary and `--json`.
RUN_COUNTERS = COUNTERS[2:]
UNCONFIRMED = (
    "up to {} of it unconfirmed: requests in flight when a process died, counted at the most "
    "they could cost (the provider's bill says what they did)"
)


def stage_specs() -> list[Stage]:
    from raspberry import pipeline  # imported here: reading a build needs no stage loaded

    return pipeline.stages()


def _names() -> list[str]:
    return [s.name for s in stage_specs()]


def stage_totals(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: shard states and the counters recorded when each shard was computed."""
    out: dict[str, dict[str, Any]] = {}
    for stage in _names():
        shards = manifest["stages"].get(stage, {})
        totals: dict[str, Any] = {
            "shards_done": 0,
            "shards_failed": 0,
            "shards_pending": 0,
            **dict.fromkeys(COUNTERS, 0),
        }
        failed, failed_rows = {}, {}
        for name, entry in sorted(shards.items()):
            totals[f"shards_{entry['state']}"] += 1
            if entry["state"] == "failed":
                failed[name] = entry.get("error", "")
            elif entry["state"] == "done":
                for key in COUNTERS:
                    totals[key] += entry.get(key, 0)
                if entry.get("rows_failed"):
                    failed_rows[name] = entry["rows_failed"]
        totals["cost_usd"] = round(totals["cost_usd"], 6)
        totals["failed"] = failed
        totals["failed_rows"] = failed_rows
        out[stage] = totals
    return out


def stage_reports(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: the done shards' reports merged, plus drop reasons and derived figures."""
    return {spec.name: spec.report(manifest) for spec in stage_specs()}


def build_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a stage's exports say of the whole build: its id, funnel, and what failed."""
    totals = stage_totals(manifest).values()
    return {
        "build_id": manifest["build_id"],
        "funnel": funnel_line(manifest),
        "complete": build_state(manifest) == "completed",
        "failed_shards": sum(t["shards_failed"] for t in totals),
        "failed_rows": sum(len(r) for t in totals for r in t["failed_rows"].values()),
    }


def build_state(manifest: dict[str, Any]) -> str:
    totals = stage_totals(manifest)
    if any(t["shards_failed"] or t["failed_rows"] for t in totals.values()):
        return "failed"
    if all(t["shards_done"] and not t["shards_pending"] for t in totals.values()):
        return "completed"
    return "incomplete"


def funnel_line(manifest: dict[str, Any]) -> str:
    t = stage_totals(manifest)
    return " → ".join(f"{s.funnel or s.name} {t[s.name]['rows_out']}" for s in stage_specs())


def shard_rows(manifest: dict[str, Any], stage: str, computed: list[str]) -> list[dict[str, Any]]:
    """One row per shard of a stage: its state, counts, cost, and whether this run computed it."""
    rows = []
    for name, entry in sorted(manifest["stages"].get(stage, {}).items()):
        done = entry["state"] == "done"
        rows.append(
            {
                "shard": name,
                "state": entry["state"],
                "this run": "computed" if name in computed else ("from cache" if done else "-"),
                "rows in": entry.get("rows_in", 0),
                "rows out": entry.get("rows_out", 0),
                "cost": money(entry.get("cost_usd", 0.0)),
                "error": entry.get("error", ""),
            }
        )
    return rows


def funnel_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stage: rows in → out and why rows were dropped."""
    totals, reports = stage_totals(manifest), stage_reports(manifest)
    rows = []
    for stage in _names():
        t, report = totals[stage], reports[stage]
        drops = report.get("drops", {})
        rows.append(
            {
                "stage": stage,
                "rows in": t["rows_in"],
                "rows out": t["rows_out"],
                "dropped": t["rows_in"] - t["rows_out"] if t["rows_in"] else 0,
                "drop reasons": ", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "-",
            }
        )
    return rows


def cost_rows(manifest: dict[str, Any], run: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Tokens and cost per stage: what this run paid, and the build's total when computed."""
    totals = stage_totals(manifest)
    rows = []
    for stage in _names():
        this_run = (run or {}).get("stages", {}).get(stage, {})
        rows.append(
            {
                "stage": stage,
                "requests (this run)": this_run.get("requests_sent", 0),
                "cache hits (this run)": this_run.get("cache_hits", 0),
                "tokens in": totals[stage]["tokens_in"],
                "tokens out": totals[stage]["tokens_out"],
                "prompt cache read / written": (
                    f"{totals[stage]['tokens_cache_read']} / {totals[stage]['tokens_cache_write']}"
                ),
                "cost (this run)": money(this_run.get("cost_usd", 0.0)),
                "cost (build)": money(totals[stage]["cost_usd"]),
            }
        )
    return rows


def run_lines(manifest: dict[str, Any]) -> list[str]:
    """What each run of the build did: the shards it computed (a rerun names the ones it redid)."""
    lines = []
    runs = manifest.get("runs") or []
    for i, run in enumerate(runs, 1):
        stages = run.get("stages", {})
        if run.get("state") in ("running", "interrupted"):
            # Killed before it could say: what its shards recorded while it ran.
            until = runs[i]["started_at"] if i < len(runs) else float("inf")
            stages = _written_during(manifest, run.get("started_at", 0), until)
        order = _names()
        computed = [f"{s}/{n}" for s in order for n in stages.get(s, {}).get("computed", [])]
        cached = sum(t.get("shards_cached", 0) for t in stages.values())
        if len(computed) > 8:  # a first run computes everything: counts say enough
            per_stage = (f"{s} {len(stages[s]['computed'])}" for s in order if s in stages)
            what = f"{len(computed)} shards ({', '.join(per_stage)})"
        else:
            what = ", ".join(computed) or "nothing"
        lines.append(
            f"run {i} ({'first run' if i == 1 else 'rerun'}, {run.get('state', '?')}): computed "
            f"{what}; {cached} shard{'s' * (cached != 1)} from the cache"
        )
    return lines


def _written_during(
    manifest: dict[str, Any], start: float, until: float
) -> dict[str, dict[str, list[str]]]:
    """Per stage, the shards recorded done from `start` until `until`."""
    found = {}
    for stage, shards in manifest["stages"].items():
        names = [
            name
            for name, entry in shards.items()
            if entry.get("state") == "done" and start <= entry.get("at", -1) < until
        ]
        if names:
            found[stage] = {"computed": sorted(names)}
    return found


def preview(
    store: BuildStore, manifest: dict[str, Any], stage: str, n: int = 3
) -> list[dict[str, Any]]:
    """The first n accepted rows of a stage's done shards, long texts cut to 300 characters."""
    spec = next(s for s in stage_specs() if s.name == stage)
    rows: list[dict[str, Any]] = []
    accepted = spec.accepted
    wanted = list(spec.preview) + ([accepted[0]] if accepted else [])
    for entry in manifest["stages"].get(stage, {}).values():
        if len(rows) >= n:
            break
        if entry["state"] != "done":
            continue
        for row in store.read_columns(entry["path"], spec.row_type, wanted).to_pylist():
            if accepted and row.pop(accepted[0]) != accepted[1]:
                continue
            rows.append({k: _cut(v) for k, v in row.items()})
            if len(rows) >= n:
                break
    return rows


def _cut(value: Any, limit: int = 300) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + " …"
    return value


def shortfalls(stages: dict[str, Any], max_drop_share: float) -> list[str]:
    """Where a build that ran fell short, a line each, with the main drop reason: the first stage
    left with no rows (the stages after it are empty because of it), and each stage before it
    that dropped more than `max_drop_share` of the rows it read. `stages`: build_summary's."""
    said = []
    for name in (n for n in _names() if n in stages):
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


def recorded_paid(manifest: dict[str, Any]) -> Paid:
    """What the build paid as its latest run that ended recorded it."""
    for run in (manifest.get("runs") or [])[::-1]:
        if "paid_usd" in run:
            return Paid(run["paid_usd"], run.get("unconfirmed_usd", 0.0))
    return Paid(0.0, 0.0)


def build_summary(
    manifest: dict[str, Any], run: dict[str, Any] | None, paid: Paid | None = None
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


def summary_lines(summary: dict[str, Any], manifest: dict[str, Any], paid_when: str) -> list[str]:
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
