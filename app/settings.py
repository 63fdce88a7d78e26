"""What every command shares: Prefect's settings before it is imported, and --stages."""

from __future__ import annotations

import os

from raspberry.errors import RaspberryError
from raspberry.stages import registry


def prefect_env() -> None:
    """Settings Prefect reads at import: a patient ephemeral server (its first start on a small
    machine takes ~20 s), no analytics."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def parse_stages(text: str | None) -> list[str]:
    if not text:
        return registry.names()
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages:
        raise RaspberryError(f"--stages {text!r} names no stage; choose from {registry.names()}")
    unknown = [s for s in stages if s not in registry.names()]
    if unknown:
        raise RaspberryError(
            f"unknown stage(s) {unknown} in --stages; choose from {registry.names()}"
        )
    return stages
