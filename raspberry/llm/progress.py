"""Live progress of a stage: work done of a total known before it starts, requests done and in
flight, 429s, tokens, cost, and an ETA from the recent rate.

Every gateway of the process attaches its counters to one board (shard tasks run in threads);
stages count the items they finish, each shard under its own name (`in_shard`). A stage's total
comes from its plan: per shard, the units it stands for (its input rows); a running shard counts
by the share of its gathered items finished, a finished one in full, so the total never moves
and the percentage never goes back. A reporter thread reads the board every few seconds and
hands a snapshot to its sinks: a progress bar in a terminal, a Prefect progress artifact.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from raspberry.errors import ProviderError
from raspberry.llm.cost import money

T = TypeVar("T")
log = logging.getLogger(__name__)
# The rows of the running shard whose requests kept failing: label -> reason (see gather_rows).
FAILED_ROWS: ContextVar[dict[str, str] | None] = ContextVar("failed_rows", default=None)
SHARD: ContextVar[int | None] = ContextVar("shard", default=None)  # whose work is counted
RECENT_S = 30.0  # the ETA comes from the rate over this many seconds
_LEFT_OUT = object()


@dataclass
class Snapshot:
    done: float  # units of work done (a running shard counts by the share of its rows finished)
    total: int  # units of the whole stage, known before it starts
    unit: str  # what a unit is: the stage's input rows, or its shards, or counted items
    requests_sent: int
    in_flight: int
    cache_hits: int
    rate_limited: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    elapsed_s: float
    eta_s: float | None  # from the rate of the last RECENT_S seconds

    @property
    def percent(self) -> float:
        return min(100.0, 100.0 * self.done / self.total) if self.total else 0.0

    def count(self) -> str:
        return f"{int(self.done)}/{self.total} {self.unit}"

    def paid(self) -> str:
        return (
            f"{self.requests_sent} requests ({self.in_flight} in flight, {self.cache_hits} cached, "
            f"{self.rate_limited} × 429) · {money(self.cost_usd)}"
        )

    def eta(self) -> str:
        return "-" if self.eta_s is None else f"{self.eta_s:.0f} s"

    def line(self, stage: str) -> str:
        return (
            f"{stage}: {self.count()} ({self.percent:.0f}%) · {self.paid()} · tokens "
            f"{self.tokens_in:,} in / {self.tokens_out:,} out · ETA {self.eta()}"
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
        self.reset()

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

    def reset(self, weights: dict[int, int] | None = None, unit: str = "items") -> None:
        """Start counting a stage. weights: per shard, the units it stands for (its input rows),
        so the total is known before any shard starts; without them, items are counted as
        their work is gathered."""
        with self._guarded():
            self._base = {}
            self._weights, self._unit = dict(weights or {}), unit if weights else "items"
            self._jobs: dict[int | None, list[int]] = {}  # shard -> [items gathered, done]
            self._finished: set[int] = set()
            self.started = time.monotonic()
            self._recent: deque[tuple[float, float]] = deque([(self.started, 0.0)])

    def add_items(self, n: int) -> None:
        with self._guarded():
            self._jobs.setdefault(SHARD.get(), [0, 0])[0] += n

    def item_done(self) -> None:
        with self._guarded():
            self._jobs.setdefault(SHARD.get(), [0, 0])[1] += 1

    def shard_finished(self, shard: int) -> None:
        with self._guarded():
            self._finished.add(shard)

    @property
    def items_done(self) -> int:
        return sum(done for _, done in self._jobs.values())

    def _progress(self) -> tuple[float, int]:
        if not self._weights:
            return float(self.items_done), sum(total for total, _ in self._jobs.values())
        done = 0.0
        for shard, weight in self._weights.items():
            gathered, finished = self._jobs.get(shard, [0, 0])
            if shard in self._finished:
                done += weight
            elif gathered:  # a shard may gather again (e.g. synthesis, then evolution)
                done += weight * min(finished / gathered, 0.99)
        return done, sum(self._weights.values())

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            live = list(self._live.values())
            sums = dict(self._base)
            for stats in live:
                for f in fields(stats):
                    sums[f.name] = sums.get(f.name, 0) + getattr(stats, f.name)
            done, total = self._progress()
            self._recent.append((now, done))
            while len(self._recent) > 2 and now - self._recent[1][0] >= RECENT_S:
                self._recent.popleft()
            then, done_then = self._recent[0]
            rate = (done - done_then) / (now - then) if now > then else 0.0
            return Snapshot(
                done=done,
                total=total,
                unit=self._unit,
                requests_sent=int(sums.get("requests_sent", 0)),
                in_flight=int(sum(s.in_flight for s in live)),
                cache_hits=int(sums.get("cache_hits", 0)),
                rate_limited=int(sums.get("rate_limited", 0)),
                tokens_in=int(sums.get("tokens_in", 0)),
                tokens_out=int(sums.get("tokens_out", 0)),
                cost_usd=float(sums.get("cost_usd", 0.0)),
                elapsed_s=now - self.started,
                eta_s=(total - done) / rate if rate > 0 and done < total else None,
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
def in_shard(shard: int) -> Iterator[dict[str, str]]:
    """Within it, work is counted on the board for this shard, and gather_rows leaves out a row
    whose requests keep failing and names it in the dict it yields."""
    failed: dict[str, str] = {}
    tokens = FAILED_ROWS.set(failed), SHARD.set(shard)
    try:
        yield failed
    finally:
        FAILED_ROWS.reset(tokens[0])
        SHARD.reset(tokens[1])


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

    def __init__(
        self,
        sinks: list[Sink],
        every_s: float = 2.0,
        weights: dict[int, int] | None = None,
        unit: str = "items",
    ):
        self._sinks, self._every, self._plan = sinks, every_s, (weights, unit)
        self._stop = threading.Event()
        self._warn = _WarnOnce("progress display")
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> Reporter:
        BOARD.reset(*self._plan)
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
