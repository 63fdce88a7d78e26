"""Live progress of a stage: items done, requests done and in flight, 429s, tokens, cost, ETA.

Every gateway of the process attaches its counters to one board (shard tasks run in threads);
stages count the items they finish. A reporter thread reads the board every few seconds and
hands a line and a percentage to its sinks: a rich status line in a terminal, a Prefect progress
artifact in the UI.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


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


class Board:
    """Process-wide sums over the attached gateways' stats; thread-safe enough for counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: list[Any] = []
        self._base: dict[str, float] = {}
        self.items_total = 0
        self.items_done = 0
        self.started = time.monotonic()

    def attach(self, stats: Any) -> None:
        with self._lock:
            self._stats.append(stats)

    def detach(self, stats: Any) -> None:
        # A finished gateway's counts stay on the board until the next reset.
        with self._lock:
            self._stats.remove(stats)
            for f in fields(stats):
                if f.name != "in_flight":
                    self._base[f.name] = self._base.get(f.name, 0) + getattr(stats, f.name)

    def reset(self) -> None:
        with self._lock:
            self._base = {}
            self.items_total = self.items_done = 0
            self.started = time.monotonic()

    def add_items(self, n: int) -> None:
        with self._lock:
            self.items_total += n

    def item_done(self) -> None:
        with self._lock:
            self.items_done += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            live = list(self._stats)
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


Sink = Callable[[Snapshot], None]


class Reporter:
    """Calls each sink with a fresh snapshot every `every_s` seconds, and once more at the end."""

    def __init__(self, sinks: list[Sink], every_s: float = 2.0):
        self._sinks, self._every = sinks, every_s
        self._stop = threading.Event()
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
        snapshot = BOARD.snapshot()
        for sink in self._sinks:
            try:
                sink(snapshot)
            except Exception:  # a progress display must never break a build
                continue
