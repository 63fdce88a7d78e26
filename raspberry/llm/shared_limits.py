"""Rate limits kept in the gateway's state database (state.py), shared by every process that uses
it: the threads of a build, the workers of a Dask cluster, several builds on several machines.
The rules are limits.py's; here is only where the buckets and pauses live."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator

from sqlalchemy import bindparam, func, select

from raspberry.llm.limits import Bucket, ModelLimits, RateLimits
from raspberry.llm.state import (
    ALIVE_S,
    BUCKETS,
    PAUSES,
    PEERS,
    Prepared,
    driver,
    engine_for,
    touch,
    upsert,
)


class SharedLimits(RateLimits):
    """Limits in the gateway's state database (state.py), shared by every process that uses it:
    each change is one transaction that holds the limit's rows, on the wall clock (which the
    machines of a cluster agree on, unlike their monotonic clocks)."""

    TOUCH_S = 5.0  # how often this process says it uses a limit

    def __init__(self, target: str):
        super().__init__()
        self._engine = engine_for(target)
        self._touched: dict[str, float] = {}
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

    def clock(self) -> float:
        return time.time()

    @contextlib.contextmanager
    def _limits(self, key: tuple[str, str]) -> Iterator[ModelLimits]:
        name = "|".join(key)
        with driver(self._engine) as tx:
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
            before = (limits.paused_until, limits.paused_at, limits.factor, limits.cut_at)
            read = {(r.kind, r.per_minute, r.level, r.stamp, bool(r.learnt)) for r in rows}
            yield limits
            self._seen(key, limits)
            changed = [
                {"p_name": name, "p_kind": kind, "p_per_minute": b.per_minute,
                 "p_level": b.level, "p_stamp": b.stamp, "p_learnt": int(kind in limits.learnt)}
                for kind, b in limits.buckets.items()
                if (kind, b.per_minute, b.level, b.stamp, kind in limits.learnt) not in read
            ]  # fmt: skip
            for bucket in changed:  # one or two: executemany costs more on PostgreSQL
                tx.execute(self._write, bucket)
            after = (limits.paused_until, limits.paused_at, limits.factor, limits.cut_at)
            if after != before:
                names = ("p_until", "p_at", "p_factor", "p_cut_at")
                values = dict(zip(names, after, strict=True))
                tx.execute(self._write_pause, {"p_name": name, **values})
        if time.time() - self._touched.get(name, 0.0) > self.TOUCH_S:
            self._touched[name] = time.time()
            touch(self._engine, name)

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
