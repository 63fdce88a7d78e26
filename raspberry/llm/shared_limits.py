"""Rate limits kept in the gateway's state database (state.py), shared by every process that uses
it: the threads of a build, the workers of a Dask cluster, several builds on several machines.
The rules are limits.py's; here is only where the buckets and pauses live.

A limit one process alone uses is booked in that process's memory and written every SYNC_S:
a transaction per request cost more than the request's HTTP call's own CPU share. What other
processes must know at once (a 429's pause and cut, a limit learnt, the configured one) is
written as it happens. A second process that starts meanwhile reads buckets at most SYNC_S
old; the first finds its writes at its next sync, adds its own bookings to them, and from then
on books every request in the database, as processes sharing a limit do.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select

from raspberry.llm.driver import DriverTx, Prepared, driver
from raspberry.llm.limits import Bucket, ModelLimits, RateLimits
from raspberry.llm.state import (
    ALIVE_S,
    BUCKETS,
    PAUSES,
    PEERS,
    engine_for,
    touch,
    upsert,
)

SYNC_S = 0.1  # how often a limit this process alone uses is written (and its peers counted)

Rows = frozenset[tuple[Any, ...]]  # a limit's rows as read or written: its buckets and pause


def _rows(limits: ModelLimits) -> Rows:
    buckets = {(k, b.per_minute, b.level, b.stamp, k in limits.learnt)
               for k, b in limits.buckets.items()}  # fmt: skip
    pause = ("pause", limits.paused_until, limits.paused_at, limits.factor, limits.cut_at)
    return frozenset({*buckets, pause})


@dataclass
class _Alone:
    """A limit this process alone uses: booked here, written at `synced_at` + SYNC_S."""

    key: tuple[str, str]
    limits: ModelLimits
    written: Rows  # what the database held after the last sync: another's write differs
    synced_at: float


class SharedLimits(RateLimits):
    """Limits in the gateway's state database (state.py), shared by every process that uses it:
    each change is one transaction that holds the limit's rows (a limit this process alone uses:
    one every SYNC_S), on the wall clock (which the machines of a cluster agree on, unlike their
    monotonic clocks)."""

    TOUCH_S = 5.0  # how often this process says it uses a limit

    def __init__(self, target: str):
        super().__init__()
        self._engine = engine_for(target)
        self._touched: dict[str, float] = {}
        self._alone: dict[str, _Alone] = {}
        self._counted: dict[str, float] = {}  # when the limit's peers were last counted
        self._lock = threading.RLock()  # a process's threads share its limits
        self._flusher: threading.Thread | None = None
        # Built once: making a statement costs more CPU than running it.
        # Parameters are named p_<column>: SQLAlchemy keeps plain column names for itself.
        name = bindparam("p_name")
        p = functools.partial(Prepared, self._engine)
        self._read = p(select(BUCKETS).where(BUCKETS.c.limit_key == name).with_for_update())
        self._read_pause = p(select(PAUSES).where(PAUSES.c.limit_key == name))
        fields = {f: bindparam(f"p_{f}") for f in ("per_minute", "level", "stamp", "learnt")}
        self._write = p(
            upsert(self._engine, BUCKETS, {"limit_key": name, "kind": bindparam("p_kind")}, fields)
        )
        pause = {f: bindparam(f"p_{f}") for f in ("until", "at", "factor", "cut_at")}
        self._write_pause = p(upsert(self._engine, PAUSES, {"limit_key": name}, pause))
        self._peers = p(
            select(func.count()).where(
                PEERS.c.limit_key == name, PEERS.c.seen_at > bindparam("p_since")
            )
        )

    def clock(self) -> float:
        return time.time()

    @contextlib.contextmanager
    def _limits(self, key: tuple[str, str], exact: bool = False) -> Iterator[ModelLimits]:
        name = "|".join(key)
        with self._lock:
            alone = self._alone.get(name)
            if alone is not None and not exact and self.clock() - alone.synced_at < SYNC_S:
                yield alone.limits
                self._seen(key, alone.limits)
                return
            with driver(self._engine) as tx:
                limits = self._read_limits(tx, name)
                read = _rows(limits)
                if alone is not None:
                    limits = self._join(alone, limits, read)
                for bucket in limits.buckets.values():
                    bucket.booked = 0.0
                yield limits
                self._seen(key, limits)
                self._write_changes(tx, name, limits, read)
                self._count(tx, key, limits, _rows(limits))
        if time.time() - self._touched.get(name, 0.0) > self.TOUCH_S:
            self._touched[name] = time.time()
            touch(self._engine, name)

    def _read_limits(self, tx: DriverTx, name: str) -> ModelLimits:
        rows = tx.execute(self._read, {"p_name": name})
        paused = tx.execute(self._read_pause, {"p_name": name})
        limits = ModelLimits()
        if paused:
            pause = paused[0]
            limits.paused_until, limits.paused_at = pause.until, pause.at
            limits.factor, limits.cut_at = pause.factor, pause.cut_at
        for row in rows:
            bucket = Bucket(row.per_minute, row.stamp)
            bucket.level, bucket.stamp = row.level, row.stamp
            limits.buckets[row.kind] = bucket
            if row.learnt:
                limits.learnt.add(row.kind)
        return limits

    @staticmethod
    def _join(alone: _Alone, limits: ModelLimits, read: Rows) -> ModelLimits:
        """This process's view after booking alone since its last sync: its own, when nobody
        else wrote since; else the database's, with what this process booked added to it."""
        if read == alone.written:
            return alone.limits
        now = time.time()
        for kind, ours in alone.limits.buckets.items():
            if kind not in limits.buckets:
                limits.buckets[kind] = ours
            elif ours.booked:
                limits.buckets[kind].reserve(ours.booked, now)
        return limits

    def _write_changes(self, tx: DriverTx, name: str, limits: ModelLimits, read: Rows) -> None:
        """The buckets and the pause that differ from what was read."""
        for kind, b in limits.buckets.items():
            row = (kind, b.per_minute, b.level, b.stamp, kind in limits.learnt)
            if row not in read:
                tx.execute(self._write, {
                    "p_name": name, "p_kind": kind, "p_per_minute": b.per_minute,
                    "p_level": b.level, "p_stamp": b.stamp, "p_learnt": int(kind in limits.learnt),
                })  # fmt: skip
        pause = (limits.paused_until, limits.paused_at, limits.factor, limits.cut_at)
        if ("pause", *pause) not in read:
            values = dict(zip(("p_until", "p_at", "p_factor", "p_cut_at"), pause, strict=True))
            tx.execute(self._write_pause, {"p_name": name, **values})

    def _count(
        self, tx: DriverTx, key: tuple[str, str], limits: ModelLimits, written: Rows
    ) -> None:
        """Book alone from now on while no other process uses the limit: counted at every sync
        while alone, every TOUCH_S while not."""
        name, now = "|".join(key), time.time()
        if name not in self._alone and now - self._counted.get(name, 0.0) < self.TOUCH_S:
            return
        self._counted[name] = now
        peers = tx.execute(self._peers, {"p_name": name, "p_since": now - ALIVE_S})[0][0]
        if peers <= 1:  # this process (or none yet: it says so after its first booking)
            if self._flusher is None:
                self._flusher = self._flush_later()
            self._alone[name] = _Alone(key, limits, written, now)
        else:
            self._alone.pop(name, None)

    def _flush_later(self) -> threading.Thread:
        """A thread that writes what was booked alone once SYNC_S has passed, when no booking
        came to do it: a process gone quiet leaves its bookings where others see them."""

        def flush() -> None:
            while True:
                time.sleep(SYNC_S)
                with self._lock:
                    due = [
                        alone.key
                        for alone in self._alone.values()
                        if time.time() - alone.synced_at >= SYNC_S
                        and any(b.booked for b in alone.limits.buckets.values())
                    ]
                for key in due:
                    with contextlib.suppress(Exception):  # the next booking will say it
                        with self._limits(key, exact=True):
                            pass

        thread = threading.Thread(target=flush, daemon=True, name="raspberry-limits-flush")
        thread.start()
        return thread

    def shared(self) -> dict[str, int]:
        """Every limit in use now ("base_url|model") and how many processes use it."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(PEERS.c.limit_key, func.count())
                .where(PEERS.c.limit_key != "", PEERS.c.seen_at > time.time() - ALIVE_S)
                .group_by(PEERS.c.limit_key)
            ).all()
        return {key: n for key, n in rows}

    def sharing(self, key: tuple[str, str]) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        PEERS.c.limit_key == "|".join(key),
                        PEERS.c.seen_at > time.time() - ALIVE_S,
                    )
                ).scalar_one()
            )


@functools.cache
def limits_for(target: str) -> SharedLimits:
    """The process's view of the limits kept in a gateway state (a SQLite path or a URL)."""
    return SharedLimits(target)
