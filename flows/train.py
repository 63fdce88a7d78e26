"""The training flow: fine-tune a student on a finished build (raspberry/train/: on this machine,
or as a provider's fine-tuning job), so that a deployment can run build → train → eval; a
progress bar with an ETA on a terminal, and the loss curve as a Prefect artifact."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from raspberry_flows.artifacts import artifact_key
from raspberry_sim.process import sim_for
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError
from raspberry.report.page import text_chart, write_report
from raspberry.stages import registry
from raspberry.stages.config import load_config
from raspberry.train.local import run_local, train_folder
from raspberry.train.remote import run_remote
from raspberry.train.report import loss_chart


class _Bar:
    """One bar per training phase (sft, dpo): optimizer steps done of the phase's, and an ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<5}"), BarColumn(bar_width=30),
            TextColumn("{task.completed}/{task.total} steps"), TimeRemainingColumn(),
            console=Console(file=sys.stderr),
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}

    def __call__(self, phase: str, step: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.update(self.tasks[phase], completed=step, total=total)


@flow(name="train_model", flow_run_name="{build_id}-train")
def train_model(output_dir: str, build_id: str, config_path: str, name: str | None = None) -> Any:
    """Train the config's `train:` model on build `build_id`; the result of raspberry/train."""
    config = load_config(config_path)
    if config.train is None:
        raise RaspberryError(f"{config_path} has no train: section (see docs/training.md)")
    cfg = config.train.model_copy(update={"name": name}) if name else config.train
    store = BuildStore(output_dir, build_id)
    bar = _Bar() if sys.stderr.isatty() or Console().is_jupyter else None
    if bar:
        bar.progress.start()
    try:
        if cfg.backend == "openai":
            with sim_for(config.sim) as sim_url:
                result = run_remote(store, cfg, config.llm, sim_url, bar)
        else:
            stage = registry.exporting().name
            result = run_local(store, cfg, Path(config.source).parent, stage, bar)
    finally:
        if bar:
            bar.progress.stop()
    chart = loss_chart(train_folder(store, cfg) / "metrics.jsonl")
    if chart:
        create_markdown_artifact(
            key=artifact_key("train", build_id, cfg.name),
            markdown=f"# Training {cfg.name} on {build_id}\n\n```\n{text_chart(chart)}\n```\n",
            description=f"the loss of training {cfg.name} on build {build_id}",
        )
    write_report(store, store.manifest())  # its Training section shows the loss curve
    get_run_logger().info("training %s of %s: %s", cfg.name, build_id, json.dumps(result))
    return result
