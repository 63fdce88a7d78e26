"""Prefect task: the export files from the SFT shards that are done."""

from __future__ import annotations

from prefect import task

from raspberry.sft.export import export_rows
from raspberry.store import build_dir, read_shard


@task(name="export", task_run_name="{build_id}-export")
def export_task(build_id: str, output_dir: str, sft_paths: list[str]) -> dict[str, str]:
    rows = [
        row
        for path in sft_paths
        for row in read_shard(build_dir(output_dir, build_id) / path, "sft")
    ]
    return export_rows(rows, build_dir(output_dir, build_id) / "exports")
