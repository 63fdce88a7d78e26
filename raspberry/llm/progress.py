"""Live progress of a stage: items done, requests done and in flight, 429s, tokens, cost, ETA.

Every gateway of the process attaches its counters to one board (shard tasks run in threads);
stages count the items they finish. A reporter thread reads the board every few seconds and
hands a line and a percentage to its sinks: a rich status line in a terminal, a Prefect progress
artifact in the UI.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from raspberry.errors import ProviderError

T = TypeVar("T")
log = logging.getLogger(__name__)
# The rows of the running shard whose requests kept failing: label -> reason (see gather_rows).
FAILED_ROWS: ContextVar[dict[str, str] | None] = ContextVar("failed_rows", default=None)
_LEFT_OUT = object()


@dataclass
class Snapshot:
    items_total: int
    items_done: int
    requests_sent: int
    in_flight: int
    cache_hits: int
    rate_limited: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    elapsed_s: float

    @property
    def percent(self) -> float:
        return 100.0 * self.items_done / self.items_total if self.items_total else 0.0

    @property
    def eta_s(self) -> float | None:
        if not self.items_done or self.items_done >= self.items_total:
            return None
        return self.elapsed_s / self.items_done * (self.items_total - self.items_done)

    def line(self, stage: str) -> str:
        eta = f"{self.eta_s:.0f} s" if self.eta_s is not None else "-"
        return (
            f"{stage}: {self.items_done}/{self.items_total} items ({self.percent:.0f}%) · "
            f"requests {self.requests_sent} sent, {self.in_flight} in flight, "
            f"{self.cache_hits} cached, {self.rate_limited} × 429 · tokens "
            f"{self.tokens_in:,} in / {self.tokens_out:,} out · ${self.cost_usd:.4f} · ETA {eta}"
        )


class _WarnOnce:
    """Logs the first error only: a broken display would repeat it at every tick."""

    def __init__(self, what: str):
        self._what, self._done = what, False

    def __call__(self, exc: Exception) -> None:
        if not self._done:
            self._done = True
            log.warning("%s error (ignored, the build goes on): %r", self._what, exc)


class Board:
    """Process-wide sums over the attached gateways' stats, safe under any interleaving of threads.

    Gateways are tracked by identity: GatewayStats is a dataclass, and two shards whose counters
    are equal (a rebuild served from the cache) must not stand for each other. The board is
    reporting only: an error inside it is logged once and never reaches the shard that called.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, Any] = {}
        self._base: dict[str, float] = {}
        self._warn = _WarnOnce("progress board")
        self.items_total = 0
        self.items_done = 0
        self.started = time.monotonic()

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except Exception as exc:  # progress must never fail the work it reports on
            self._warn(exc)

    def attach(self, stats: Any) -> None:
        with self._guarded():
            self._live[id(stats)] = stats

    def detach(self, stats: Any) -> None:
        # A finished gateway's counts stay on the board until the next reset.
        with self._guarded():
            if self._live.pop(id(stats), None) is stats:
                for f in fields(stats):
                    if f.name != "in_flight":
                        self._base[f.name] = self._base.get(f.name, 0) + getattr(stats, f.name)

    def reset(self) -> None:
        with self._guarded():
            self._base = {}
            self.items_total = self.items_done = 0
            self.started = time.monotonic()

    def add_items(self, n: int) -> None:
        with self._guarded():
            self.items_total += n

    def item_done(self) -> None:
        with self._guarded():
            self.items_done += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            live = list(self._live.values())
            sums = dict(self._base)
            for stats in live:
                for f in fields(stats):
                    sums[f.name] = sums.get(f.name, 0) + getattr(stats, f.name)
            return Snapshot(
                items_total=self.items_total,
                items_done=self.items_done,
                requests_sent=int(sums.get("requests_sent", 0)),
                in_flight=int(sum(s.in_flight for s in live)),
                cache_hits=int(sums.get("cache_hits", 0)),
                rate_limited=int(sums.get("rate_limited", 0)),
                tokens_in=int(sums.get("tokens_in", 0)),
                tokens_out=int(sums.get("tokens_out", 0)),
                cost_usd=float(sums.get("cost_usd", 0.0)),
                elapsed_s=time.monotonic() - self.started,
            )


BOARD = Board()


async def gather_all(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """asyncio.gather that lets every job run to its end before the first error is raised: their
    requests are in flight and paid for, and must reach the cache before the gateway closes."""
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


async def gather_counted(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """gather_all that counts each finished job on the board, for progress and ETA."""
    pending = list(jobs)
    BOARD.add_items(len(pending))

    async def counted(job: Awaitable[T]) -> T:
        result = await job
        BOARD.item_done()
        return result

    return await gather_all(counted(j) for j in pending)


@contextmanager
def collecting_row_failures() -> Iterator[dict[str, str]]:
    """Within it, gather_rows leaves out a row whose requests keep failing and names it here."""
    failed: dict[str, str] = {}
    token = FAILED_ROWS.set(failed)
    try:
        yield failed
    finally:
        FAILED_ROWS.reset(token)


async def gather_rows(jobs: Iterable[tuple[str, Awaitable[T]]]) -> list[T]:
    """gather_counted over (label, job) pairs of per-row work. Where failures are collected (a
    shard), a row whose requests keep failing fails alone: it is left out of the results and
    named with its reason, and the other rows go on. Elsewhere its error is raised."""
    failed = FAILED_ROWS.get()

    async def one(label: str, job: Awaitable[T]) -> Any:
        try:
            return await job
        except ProviderError as exc:
            if failed is None:
                raise
            failed[label] = str(exc)[:500]
            return _LEFT_OUT

    results = await gather_counted(one(label, job) for label, job in jobs)
    return [r for r in results if r is not _LEFT_OUT]


Sink = Callable[[Snapshot], None]


class Reporter:
    """Calls each sink with a fresh snapshot every `every_s` seconds, and once more at the end."""

    def __init__(self, sinks: list[Sink], every_s: float = 2.0):
        self._sinks, self._every = sinks, every_s
        self._stop = threading.Event()
        self._warn = _WarnOnce("progress display")
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> Reporter:
        BOARD.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._emit()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._emit()

    def _emit(self) -> None:
        try:
            snapshot = BOARD.snapshot()
            for sink in self._sinks:
                try:
                    sink(snapshot)
                except Exception as exc:  # one broken display must not starve the others
                    self._warn(exc)
        except Exception as exc:  # a progress display must never break a build
            self._warn(exc)
