"""Prefect task: the build's export files, from the done shards of the stage that exports.

A build with failed shards or rows exports to exports-partial/, never where a complete build's
files go; a complete export removes an earlier partial one.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from raspberry.build_files.store import BuildStore
from raspberry.report.tables import build_facts
from raspberry.stages import registry


@task(name="export", task_run_name="{build_id}-export")
def export_task(
    build_id: str, output_dir: str, stage: str, settings: dict[str, Any]
) -> dict[str, Any]:
    exports = registry.stage(stage).exports
    assert exports is not None, f"stage {stage} writes no exports"
    store = BuildStore(output_dir, build_id)
    facts = build_facts(store.manifest())
    complete = facts["complete"]
    exported = exports.write(store, settings, store.exports(partial=not complete), facts)
    if complete:
        store.exports(partial=True).remove("")
    return exported
