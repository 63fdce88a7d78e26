"""A stage's live progress in the Prefect UI (a progress artifact), the run log and a terminal."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from raspberry_flows.artifacts import artifact_key
from rich.console import Console
from rich.live import Live

from raspberry.llm.progress import Reporter, Snapshot

LOG_EVERY_S = 30.0


class _ArtifactSink:
    def __init__(self, key: str, stage: str):
        self._stage = stage
        self._id = create_progress_artifact(0.0, key=key, description=f"{stage}: starting")

    def __call__(self, snap: Snapshot) -> None:
        update_progress_artifact(self._id, snap.percent, description=snap.line(self._stage))


class _LogSink:
    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[Any], stage: str):
        self._logger, self._stage, self._last = logger, stage, time.monotonic()

    def __call__(self, snap: Snapshot) -> None:
        if time.monotonic() - self._last >= LOG_EVERY_S:
            self._last = time.monotonic()
            self._logger.info("%s", snap.line(self._stage))


class _TerminalSink:
    """A status line redrawn in place; only when stderr is a terminal."""

    def __init__(self, stage: str):
        self._stage = stage
        self.live = Live(console=Console(file=sys.stderr), transient=True, auto_refresh=False)

    def __call__(self, snap: Snapshot) -> None:
        self.live.update(snap.line(self._stage), refresh=True)


class StageProgress:
    """`with StageProgress(stage, build_id, logger):` around the wait for a stage's shards."""

    def __init__(self, stage: str, build_id: str, logger: Any):
        key = artifact_key("progress", build_id, stage)
        sinks: list[Any] = [_ArtifactSink(key, stage), _LogSink(logger, stage)]
        self._terminal = _TerminalSink(stage) if sys.stderr.isatty() else None
        if self._terminal:
            sinks.append(self._terminal)
        self._reporter = Reporter(sinks)

    def __enter__(self) -> StageProgress:
        if self._terminal:
            self._terminal.live.start()
        self._reporter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._reporter.__exit__(*exc)
        if self._terminal:
            self._terminal.live.stop()
