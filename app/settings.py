"""What every command shares: Prefect's settings before it is imported."""

from __future__ import annotations

import os


def prefect_env() -> None:
    """Settings Prefect reads at import: a patient ephemeral server (its first start on a small
    machine takes ~20 s), no analytics."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
