"""Prefect task: the build's export files, from the done shards of the stage that exports.

A build with failed shards or rows exports to exports-partial/, never where a complete build's
files go; a complete export removes an earlier partial one.
"""

from __future__ import annotations

import shutil
from typing import Any

from prefect import task

from raspberry import pipeline
from raspberry.report import build_state
from raspberry.store import build_dir, read_manifest


@task(name="export", task_run_name="{build_id}-export")
def export_task(
    build_id: str, output_dir: str, stage: str, settings: dict[str, Any]
) -> dict[str, Any]:
    exports = pipeline.stage(stage).exports
    assert exports is not None, f"stage {stage} writes no exports"
    folder = build_dir(output_dir, build_id)
    complete = build_state(read_manifest(output_dir, build_id)) == "completed"
    exported = exports.write(
        output_dir, build_id, settings, folder / ("exports" if complete else "exports-partial")
    )
    if complete:
        shutil.rmtree(folder / "exports-partial", ignore_errors=True)
    return exported
