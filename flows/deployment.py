"""The nightly deployment: its schedule and parameters come from the build config.

`prefect deploy --name nightly-build` (prefect.yaml) calls `nightly_settings` as a build step and
fills the deployment from what it returns; `raspberry serve` serves the same flow on the same
schedule from one process. Either way at most one nightly build runs at a time: a run due while
another is still going is cancelled (CANCEL_NEW), so nights never overlap.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron
from raspberry_flows.build import build_dataset

from raspberry.stages.config import load_config

DEPLOYMENT = "nightly-build"
TAGS = ["raspberry", "nightly"]
PROJECT_ROOT = Path(__file__).resolve().parent.parent
ONE_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


def nightly_settings(config: str = "configs/demo.yaml") -> dict[str, str]:
    """A prefect.yaml build step: the config's absolute path, its schedule and the project folder.

    RASPBERRY_CONFIG, when set, names the config instead. Loading the config here means a broken
    one stops `prefect deploy` with its one-line error instead of deploying a night that fails.
    """
    path = Path(os.environ.get("RASPBERRY_CONFIG") or config).resolve()
    schedule = load_config(path).schedule
    return {
        "config_path": str(path),
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "directory": str(PROJECT_ROOT),
    }


def serve_nightly(config_path: str) -> None:
    """Serve the nightly build from this process until interrupted (`raspberry serve`)."""
    settings = nightly_settings(config_path)
    build_dataset.serve(
        name=DEPLOYMENT,
        schedules=[Cron(settings["cron"], timezone=settings["timezone"])],
        parameters={"config_path": settings["config_path"]},
        global_limit=ONE_AT_A_TIME,
        tags=TAGS,
        description="The nightly Raspberry build; build id: <config name>-<scheduled date>.",
    )
