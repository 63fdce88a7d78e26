"""A training's loss curve, for the build report and the training flow's artifact."""

from __future__ import annotations

import json
from pathlib import Path

from raspberry.build_files.store import BuildStore
from raspberry.figures import Chart


def loss_chart(metrics: Path, points: int = 24) -> Chart | None:
    """The training loss at up to `points` logged steps (every phase: sft, then dpo)."""
    if not metrics.is_file():
        return None
    logged = [line for line in map(json.loads, metrics.read_text().splitlines()) if "loss" in line]
    if not logged:
        return None
    shown = logged[:: max(1, len(logged) // points)]
    return Chart(
        f"training loss ({metrics.parent.name})",
        [f"{x['phase']} step {x['step']}" for x in shown],
        [round(x["loss"], 4) for x in shown],
    )


def loss_charts(store: BuildStore) -> list[Chart]:
    """One chart per training of the build (<build>/train/<name>/metrics.jsonl)."""
    folder = store.files.local_path("train")
    if folder is None or not folder.is_dir():
        return []
    charts = [loss_chart(p / "metrics.jsonl") for p in sorted(folder.iterdir())]
    return [c for c in charts if c]
