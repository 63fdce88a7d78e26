"""What a build shows in the Prefect UI: per stage, tables of shard states, the funnel, tokens and
cost, and a preview of accepted rows; per build, the funnel and a link to the HTML report.

Keys are stable per (build, stage), so the UI keeps each artifact's history across reruns. Only
rows and counts go in: no record, log line or artifact ever holds a key.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from raspberry.build_files.store import BuildStore
from raspberry.report.page import write_report
from raspberry.report.tables import cost_rows, funnel_line, funnel_rows, preview, shard_rows


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def publish_stage(store: BuildStore, stage: str, totals: dict[str, Any]) -> None:
    build_id, manifest = store.build_id, store.manifest()
    shards = shard_rows(manifest, stage, totals["computed"])
    failed = totals["shards_failed"]
    create_table_artifact(
        shards,
        key=artifact_key("shards", build_id, stage),
        description=f"{stage}: {totals['shards_done']} shard(s) done, {failed} failed, "
        f"{totals['shards_cached']} from the cache",
    )
    this_stage = [r for r in funnel_rows(manifest) if r["stage"] == stage]
    create_table_artifact(
        this_stage,
        key=artifact_key("funnel", build_id, stage),
        description=f"{stage}: rows in → out and drop reasons",
    )
    run = {"stages": {stage: totals}}
    create_table_artifact(
        [r for r in cost_rows(manifest, run) if r["stage"] == stage],
        key=artifact_key("cost", build_id, stage),
        description=f"{stage}: requests, tokens and cost",
    )
    rows = preview(store, manifest, stage)
    create_table_artifact(
        rows or [{"note": "no accepted row yet"}],
        key=artifact_key("preview", build_id, stage),
        description=f"{stage}: the first {len(rows)} accepted rows (long texts cut)",
    )


def publish_build(store: BuildStore) -> None:
    build_id, manifest = store.build_id, store.manifest()
    page, markdown = write_report(store, manifest)
    create_table_artifact(
        funnel_rows(manifest),
        key=artifact_key("funnel", build_id),
        description=f"build {build_id}: {funnel_line(manifest)}",
    )
    # The report itself, not a link to a file only this machine can open.
    create_markdown_artifact(
        markdown,
        key=artifact_key("report", build_id),
        description=f"build {build_id}: what it paid, funnel, turns to correct, sample rows, "
        f"lengths, cost per stage (also at {page})",
    )
