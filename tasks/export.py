"""Prefect task: the export files from the SFT shards that are done.

A build with failed shards or rows exports to exports-partial/, never where a complete build's
files go; a complete export removes an earlier partial one.
"""

from __future__ import annotations

import shutil
from typing import Any

from prefect import task

from raspberry.config import ExportConfig
from raspberry.report import build_state
from raspberry.sft.export import export_rows, load_build
from raspberry.store import build_dir, read_manifest


@task(name="export", task_run_name="{build_id}-export")
def export_task(build_id: str, output_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    manifest = read_manifest(output_dir, build_id)
    folder = build_dir(output_dir, build_id)
    complete = build_state(manifest) == "completed"
    exported = export_rows(
        load_build(output_dir, build_id),
        ExportConfig.model_validate(settings),
        folder / ("exports" if complete else "exports-partial"),
        manifest,
    )
    if complete:
        shutil.rmtree(folder / "exports-partial", ignore_errors=True)
    return exported
