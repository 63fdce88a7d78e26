"""What a build's records say, as one typed value (`BuildStore.manifest()`): the records are JSON
files, one per shard, run and build-level field (store.py), read back into these shapes.

The types are TypedDicts over the JSON as it is stored, so a build written by an earlier
version reads the same; each field is optional because a record holds only what happened.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

ShardState = Literal["done", "failed"]


class ShardEntry(TypedDict, total=False):
    """One shard of one stage: how it ended, its file and what computing it counted (the
    stage's stats and the gateway's counters: rows_in, rows_out, requests_sent, cost_usd...)."""

    state: ShardState
    at: float  # when it was recorded
    path: str  # relative to the build folder
    fingerprint: str  # of the shard file, checked before a later stage reads it
    inputs: dict[str, str]  # upstream stage or build input -> its fingerprint
    error: str  # a failed shard's first line
    worker: str  # the process that computed it
    rows_failed: int  # rows that failed while the rest were kept
    rows_in: int
    rows_out: int
    report: dict[str, Any]  # the stage's own figures, summed by Stage.report
    drops: dict[str, int]  # dropped rows by reason


class StageRun(TypedDict, total=False):
    """What one run did of one stage (the flow's totals)."""

    shards_done: int
    shards_failed: int
    shards_cached: int
    computed: list[str]  # shard names computed in this run, not taken from the cache
    rows_failed: int
    error: str


class RunRecord(TypedDict, total=False):
    """One run of the build: what it was asked and how it ended (`raspberry rerun` repeats
    it, `raspberry status` reports it)."""

    build_id: str
    output_dir: str
    config_path: str
    selected: list[str]  # the stages it ran
    flow_run_id: str | None
    started_at: float
    state: Literal["running", "completed", "failed"]
    stages: dict[str, StageRun]
    exports: dict[str, str]  # export file -> path
    export_report: dict[str, Any]
    executor: str
    worker: str
    wall_s: float
    paid_usd: float
    unconfirmed_usd: float
    shortfalls: list[str]
    error: str


class Manifest(TypedDict, total=False):
    build_id: str
    created_at: float
    config_hash: dict[str, str]  # stage -> stage key
    stages: dict[str, dict[str, ShardEntry]]  # stage -> shard name -> entry
    runs: list[RunRecord]  # oldest first
    input_files: dict[str, dict[str, str]]  # stage -> file -> digest
    recipe: dict[str, str]  # file in the export folder -> text
    export: dict[str, Any]  # the export settings the exporting stage recorded
    # Besides these, one field per build-wide input, by its name (the duplicates table): its
    # fingerprint and summary.
