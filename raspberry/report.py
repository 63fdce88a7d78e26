"""Summaries of a build read from its manifest: stage totals, state, the funnel line."""

from __future__ import annotations

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
        f"questions {t['questions']['rows_out']} → dialogues {t['dialogues']['rows_out']} → "
        f"accepted {t['verdicts']['rows_out']} → SFT rows {t['sft']['rows_out']}"
    )
