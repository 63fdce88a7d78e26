"""Summaries of a build read from its manifest: stage totals, state, the funnel line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from raspberry.records import STAGES

COUNTERS = (
    "rows_in",
    "rows_out",
    "requests_sent",
    "cache_hits",
    "tokens_in",
    "tokens_out",
    "cost_usd",
)


def stage_totals(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: shard states and the counters recorded when each shard was computed."""
    out: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        shards = manifest["stages"].get(stage, {})
        totals: dict[str, Any] = {
            "shards_done": 0,
            "shards_failed": 0,
            "shards_pending": 0,
            **dict.fromkeys(COUNTERS, 0),
        }
        failed = {}
        for name, entry in sorted(shards.items()):
            totals[f"shards_{entry['state']}"] += 1
            if entry["state"] == "failed":
                failed[name] = entry.get("error", "")
            elif entry["state"] == "done":
                for key in COUNTERS:
                    totals[key] += entry.get(key, 0)
        totals["cost_usd"] = round(totals["cost_usd"], 6)
        totals["failed"] = failed
        out[stage] = totals
    return out


def drop_counts(rejections: Iterable[list[str]]) -> dict[str, int]:
    """Rejections per category: the part before ':' of each rejection's first reason."""
    return dict(
        Counter(reasons[0].split(":")[0] if reasons else "unknown" for reasons in rejections)
    )


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum additive reports key by key (numbers add, lists join, nested dicts merge)."""
    out: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, dict):
                out[key] = merge([out.get(key, {}), value])
            elif isinstance(value, int | float):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, list):
                out[key] = out.get(key, []) + value
    return out


def _median_bucket(hist: dict[str, int]) -> float | None:
    total = sum(hist.values())
    seen = 0
    for bucket in sorted(hist, key=float):
        seen += hist[bucket]
        if 2 * seen >= total:
            return float(bucket)
    return None


def stage_reports(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: the done shards' reports merged, plus drop reasons and derived rates."""
    out: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        done = [e for e in manifest["stages"].get(stage, {}).values() if e["state"] == "done"]
        report = merge([e.get("report", {}) for e in done])
        drops = merge([e.get("drops", {}) for e in done])
        if drops:
            report["drops"] = drops
        if stage == "dialogues" and report.get("dialogues"):
            solved = report.get("solved", 0)
            report["mean_turns_to_solve"] = (
                round(report["turns_to_solve"] / solved, 3) if solved else None
            )
            report["give_up_rate"] = round(1 - solved / report["dialogues"], 4)
            report["solved_at_turn"] = dict(sorted(report.get("solved_at_turn", {}).items()))
        if stage == "sft" and report.get("retention"):
            report["median_retention"] = _median_bucket(report.pop("retention"))
        out[stage] = report
    return out


def build_state(manifest: dict[str, Any]) -> str:
    totals = stage_totals(manifest)
    if any(t["shards_failed"] for t in totals.values()):
        return "failed"
    if all(t["shards_done"] and not t["shards_pending"] for t in totals.values()):
        return "completed"
    return "incomplete"


def funnel_line(manifest: dict[str, Any]) -> str:
    t = stage_totals(manifest)
    return (
        f"candidates {t['candidates']['rows_out']} → questions {t['questions']['rows_out']} → "
        f"dialogues {t['dialogues']['rows_out']} → "
        f"accepted {t['verdicts']['rows_out']} → SFT rows {t['sft']['rows_out']}"
    )
