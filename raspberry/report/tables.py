"""Summaries of a build read from its manifest: stage totals, state, the funnel line."""

from __future__ import annotations

from typing import Any

from raspberry.build_files.manifest import Manifest
from raspberry.build_files.store import BuildStore
from raspberry.llm.cost import money
from raspberry.stages import registry
from raspberry.stages.spec import Stage

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


def stage_specs() -> list[Stage]:
    return registry.stages()


def stage_names() -> list[str]:
    return [s.name for s in stage_specs()]


def stage_totals(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Per stage: shard states and the counters recorded when each shard was computed."""
    out: dict[str, dict[str, Any]] = {}
    for stage in stage_names():
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


def stage_reports(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Per stage: the done shards' reports merged, plus drop reasons and derived figures."""
    return {spec.name: spec.report(manifest) for spec in stage_specs()}


def build_facts(manifest: Manifest) -> dict[str, Any]:
    """What a stage's exports say of the whole build: its id, funnel, and what failed."""
    totals = stage_totals(manifest).values()
    return {
        "build_id": manifest["build_id"],
        "funnel": funnel_line(manifest),
        "complete": build_state(manifest) == "completed",
        "failed_shards": sum(t["shards_failed"] for t in totals),
        "failed_rows": sum(len(r) for t in totals for r in t["failed_rows"].values()),
    }


def build_state(manifest: Manifest) -> str:
    totals = stage_totals(manifest)
    if any(t["shards_failed"] or t["failed_rows"] for t in totals.values()):
        return "failed"
    if all(t["shards_done"] and not t["shards_pending"] for t in totals.values()):
        return "completed"
    return "incomplete"


def funnel_line(manifest: Manifest) -> str:
    t = stage_totals(manifest)
    return " → ".join(f"{s.funnel or s.name} {t[s.name]['rows_out']}" for s in stage_specs())


def shard_rows(manifest: Manifest, stage: str, computed: list[str]) -> list[dict[str, Any]]:
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


def funnel_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """One row per stage: rows in → out and why rows were dropped."""
    totals, reports = stage_totals(manifest), stage_reports(manifest)
    rows = []
    for stage in stage_names():
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


def cost_rows(manifest: Manifest, run: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Tokens and cost per stage: what this run paid, and the build's total when computed."""
    totals = stage_totals(manifest)
    rows = []
    for stage in stage_names():
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


def run_lines(manifest: Manifest) -> list[str]:
    """What each run of the build did: the shards it computed (a rerun names the ones it redid)."""
    lines = []
    runs = manifest.get("runs") or []
    for i, run in enumerate(runs, 1):
        stages = run.get("stages", {})
        if run.get("state") in ("running", "interrupted"):
            # Killed before it could say: what its shards recorded while it ran.
            until = runs[i]["started_at"] if i < len(runs) else float("inf")
            stages = _written_during(manifest, run.get("started_at", 0), until)
        order = stage_names()
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
    manifest: Manifest, start: float, until: float
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


def preview(store: BuildStore, manifest: Manifest, stage: str, n: int = 3) -> list[dict[str, Any]]:
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
