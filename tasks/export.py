"""Prefect task: the export files from the SFT shards that are done."""

from __future__ import annotations

from typing import Any

from prefect import task

from raspberry.config import ExportConfig
from raspberry.sft.export import export_rows, load_build
from raspberry.store import build_dir, read_manifest


@task(name="export", task_run_name="{build_id}-export")
def export_task(build_id: str, output_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    return export_rows(
        load_build(output_dir, build_id),
        ExportConfig.model_validate(settings),
        build_dir(output_dir, build_id) / "exports",
        read_manifest(output_dir, build_id),
    )
