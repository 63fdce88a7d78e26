"""The runner of the core's Python API (`raspberry.build`, `Build.train`): the same calls as the
CLI, through the Prefect flows. Registered as the `raspberry.runners` entry point, so the core
finds it without importing this layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raspberry_app.build import new_build
from raspberry_app.train import train_build


class PrefectRunner:
    def build(
        self,
        config_path: str,
        build_id: str | None,
        stages: list[str],
        output_dir: str | Path | None,
        log_file: Path | None,
    ) -> tuple[str, str, dict[str, Any]]:
        return new_build(config_path, build_id, stages, output_dir, log_file=log_file)

    def train(
        self, output_dir: str, build_id: str, config_path: str | None, name: str | None
    ) -> dict[str, Any]:
        return train_build(output_dir, build_id, config_path, name)


RUNNER = PrefectRunner()
