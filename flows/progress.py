"""A stage's live progress in the Prefect UI (a progress artifact), the run log and a terminal.

On a terminal a build shows one rich progress bar per stage for its whole run: rows done of the
stage's input rows (known before it starts), requests, cost so far and an ETA from the recent
rate. Log lines, Prefect's included, are printed above the bars, never on them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging.handlers import PrefectConsoleHandler
from raspberry_flows.artifacts import artifact_key
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from raspberry.llm.progress import BOARD, Reporter, Snapshot

LOG_EVERY_S = 30.0


class _ArtifactSink:
    """The stage's progress artifact: its line, and how many processes share each rate limit
    (from the gateway state, asked every SHARING_EVERY_S)."""

    SHARING_EVERY_S = 5.0

    def __init__(self, key: str, stage: str, sharing: Callable[[], dict[str, int]] | None):
        self._stage, self._sharing = stage, sharing
        self._shared, self._asked = "", 0.0
        self._id = create_progress_artifact(0.0, key=key, description=f"{stage}: starting")

    def __call__(self, snap: Snapshot) -> None:
        if self._sharing and time.monotonic() - self._asked >= self.SHARING_EVERY_S:
            self._asked = time.monotonic()
            shared = self._sharing()
            self._shared = (
                "; limits shared: "
                + ", ".join(
                    f"{key.replace('|', ' ')} by {n} process{'es' if n > 1 else ''}"
                    for key, n in sorted(shared.items())
                )
                if shared
                else ""
            )
        description = snap.line(self._stage) + self._shared
        update_progress_artifact(self._id, snap.percent, description=description)


class _LogSink:
    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[Any], stage: str):
        self._logger, self._stage, self._last = logger, stage, time.monotonic()

    def __call__(self, snap: Snapshot) -> None:
        if time.monotonic() - self._last >= LOG_EVERY_S:
            self._last = time.monotonic()
            self._logger.info("%s", snap.line(self._stage))


class Bars:
    """One bar per stage of a build, drawn on the terminal for the build's whole run."""

    current: Bars | None = None  # the build's bars, while a build runs in this process

    def __init__(self, stages: list[str]):
        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(bar_width=28),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[paid]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=Console(file=sys.stderr),
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {
            stage: self.progress.add_task(stage, total=None, count="waiting", paid="", eta="-")
            for stage in stages
        }

    def show(self, stage: str, snap: Snapshot) -> None:
        self.progress.update(
            self._tasks[stage],
            total=max(snap.total, 1),
            completed=min(snap.done, snap.total) if snap.total else 0,
            count=snap.count(),
            paid=snap.paid(),
            eta=snap.eta(),
            refresh=True,
        )

    def done(self, stage: str) -> None:
        """The stage ended (finished or failed): its bar stops moving."""
        self.progress.update(self._tasks[stage], eta="-", refresh=True)


@contextlib.contextmanager
def prefect_console(console: Console) -> Iterator[None]:
    """Prefect's console log handlers print through `console` meanwhile."""
    handlers = [
        h
        for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "")
        for h in logging.getLogger(name).handlers
        if isinstance(h, PrefectConsoleHandler)
    ]
    consoles = [h.console for h in handlers]
    for handler in handlers:
        handler.console = console
    try:
        yield
    finally:
        for handler, old in zip(handlers, consoles, strict=True):
            handler.console = old


@contextlib.contextmanager
def build_bars(stages: list[str]) -> Iterator[None]:
    """Show the build's bars while it runs, on a terminal or in Jupyter (rich draws there);
    Prefect's console log lines print through the bars' console meanwhile, above the bars."""
    if not (sys.stderr.isatty() or Console().is_jupyter):
        yield
        return
    bars = Bars(stages)
    Bars.current = bars
    bars.progress.start()
    try:
        with prefect_console(bars.progress.console):
            yield
    finally:
        bars.progress.stop()
        Bars.current = None


class StageProgress:
    """`with StageProgress(stage, build_id, logger, weights, unit):` around the wait for a stage's
    shards; `finished(shard)` as each ends. weights: per shard, the units it stands for."""

    def __init__(
        self,
        stage: str,
        build_id: str,
        logger: Any,
        weights: dict[int, int],
        unit: str,
        sharing: Callable[[], dict[str, int]] | None = None,
    ):
        self._stage, self._bars = stage, Bars.current
        key = artifact_key("progress", build_id, stage)
        sinks: list[Any] = [_ArtifactSink(key, stage, sharing), _LogSink(logger, stage)]
        if self._bars:
            sinks.append(lambda snap: self._bars.show(stage, snap))  # type: ignore[union-attr]
        self._reporter = Reporter(sinks, weights=weights, unit=unit)

    def finished(self, shard: int) -> None:
        BOARD.shard_finished(shard)

    def __enter__(self) -> StageProgress:
        self._reporter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._reporter.__exit__(*exc)
        if self._bars:
            self._bars.done(self._stage)
