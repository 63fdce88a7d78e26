"""Durable, content-addressed request cache, in the gateway's state database (state.py).

Each real answer is committed as it arrives, with its stop reason, usage, cost and latency, so a
killed build, resumed, re-sends only the requests that were in flight. Several processes and
builds may share one cache; a ledger records which build paid for which response, including an
empty, cut or refused completion, which is paid for but not kept as an answer. The same
transaction adds the cost to the build's budget row and takes the request out of flight
(books.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, func, select
from sqlalchemy.exc import DatabaseError, OperationalError

from raspberry.errors import ConfigError, StateUnavailable
from raspberry.llm import books, spool
from raspberry.llm.books import paid
from raspberry.llm.driver import Prepared, driver
from raspberry.llm.local import FIELD as LOCAL_FIELD
from raspberry.llm.state import (
    BATCH_ITEMS,
    IN_FLIGHT,
    LEDGER,
    RESPONSES,
    describe,
    engine_for,
    insert,
)
from raspberry.llm.types import STOP, Completion
from raspberry.local_models import locate, weights_fingerprint


def request_key(**parts: Any) -> str:
    """Hash of everything that determines a response: provider, base_url, model, messages, ..."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _is_users_file(exc: BaseException) -> bool:
    """A state the user pointed at that is not a database (not a lock or a full disk)."""
    cause = getattr(exc, "orig", exc)
    if isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause):
        return False
    return isinstance(exc, (DatabaseError, IsADirectoryError, NotADirectoryError)) and not (
        isinstance(exc, OperationalError) and "disk" in str(exc).lower()
    )


class _Statements:
    """The request path's statements, compiled once per engine for its driver (driver.py)."""

    def __init__(self, engine: Engine):
        p = functools.partial(Prepared, engine)
        # Parameters are named p_<column>: SQLAlchemy keeps plain column names for itself.
        key = bindparam("p_key")
        self.read = p(select(RESPONSES.c.completion).where(RESPONSES.c.key == key))
        # The first answer stored for a key stays: a request is answered once.
        values = {c.name: bindparam(f"p_{c.name}") for c in RESPONSES.columns}
        self.store = p(
            insert(engine, RESPONSES, **values).on_conflict_do_nothing(index_elements=["key"])
        )
        mine = (IN_FLIGHT.c.key == key) & (IN_FLIGHT.c.holder == bindparam("p_holder"))
        self.answered = p(IN_FLIGHT.update().where(mine).values(sent_at=None))  # it goes on
        self.sent = p(select(IN_FLIGHT.c.key).where(mine, IN_FLIGHT.c.sent_at.is_not(None)))
        self.unbatch = p(BATCH_ITEMS.delete().where(BATCH_ITEMS.c.key == key))


@functools.cache
def _statements(engine: Engine) -> _Statements:
    return _Statements(engine)


def is_answer(completion: Completion) -> bool:
    """A finished, non-empty answer: the only kind the request cache keeps."""
    return completion.stop_reason == STOP and bool(completion.text.strip())


def cache_model(kind: str, model: str) -> str:
    """What names a model in the request cache: a local model's weights, by content (a model
    retrained in the same folder never gets the old one's answers); else its name."""
    if kind != "local":
        return model
    return "weights:" + weights_fingerprint(*locate(model, Path.cwd(), LOCAL_FIELD))


class RequestCache:
    def __init__(self, target: str | Path):
        """target: the state's SQLite path or database URL (GatewayConfig.state())."""
        self.target = str(target)
        try:
            self._engine = engine_for(self.target)
        except (DatabaseError, IsADirectoryError, NotADirectoryError) as exc:
            if not _is_users_file(exc):
                raise
            raise ConfigError(
                f"{describe(self.target)} cannot be used as the request cache "
                f"({str(getattr(exc, 'orig', exc)).splitlines()[0]}); point gateway.cache_path "
                "(or state_url) at a new file, or move what is there away"
            ) from None
        spool.replay(self.target, lambda record: self._write(*record, replayed=True))

    def get(self, key: str) -> Completion | None:
        with driver(self._engine, write=False) as tx:
            rows = tx.execute(_statements(self._engine).read, {"p_key": key})
        return Completion.model_validate_json(rows[0].completion) if rows else None

    def put(
        self,
        key: str,
        completion: Completion,
        build_id: str | None = None,
        keep: bool = True,
        holder: str | None = None,
        last: bool = True,
    ) -> None:
        """Record what a response cost the build that sent it (its ledger line and its budget's
        spent figure), end the flight `holder` booked for it (`last`: the call ends; else it
        goes on, asking again) and, when `keep`, store the response itself, in one
        transaction. With the state unavailable, the answer waits in this machine's spool."""
        record = (key, completion, build_id, keep, holder, last)
        try:
            self._write(*record)
        except StateUnavailable:
            spool.keep(self.target, record)
            raise

    def _write(
        self,
        key: str,
        completion: Completion,
        build_id: str | None,
        keep: bool,
        holder: str | None,
        last: bool,
        replayed: bool = False,
    ) -> None:
        """replayed: an answer from the spool. Its ledger line is written only while its
        booking stands: a write the database took after its caller had given up on it (a
        frozen server's COMMIT) has booked it, and a booking moved to the ledger as unconfirmed
        by a later process stays the upper bound it is."""
        now, c, ours = time.time(), completion, _statements(self._engine)
        mine = {"p_key": key, "p_holder": holder}
        with driver(self._engine) as tx:
            if replayed and holder is not None and not tx.execute(ours.sent, mine):
                build_id = None
            if keep:
                tx.execute(
                    ours.store,
                    {
                        "p_key": key,
                        "p_model": c.model,
                        "p_completion": c.model_dump_json(),
                        "p_created_at": now,
                        "p_stop_reason": c.stop_reason,
                        "p_tokens_in": c.tokens_in,
                        "p_tokens_out": c.tokens_out,
                        "p_tokens_cache_read": c.tokens_cache_read,
                        "p_tokens_cache_write": c.tokens_cache_write,
                        "p_cost_usd": c.cost_usd,
                        "p_latency_s": c.latency_s,
                    },
                )
            # A re-attached answer's cost replaces the line booked, unconfirmed, at the most its
            # request might cost when its sender died.
            if build_id is not None and not (
                c.reattached and books.settle(tx, build_id, key, c.cost_usd)
            ):
                books.pay(tx, build_id, key, c.cost_usd)
            if c.batch:  # its batch need not be waited for again
                tx.execute(ours.unbatch, {"p_key": key})
            if holder is not None:
                ended = books.statements(self._engine).land if last else ours.answered
                tx.execute(ended, mine)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RESPONSES)).scalar_one())

    def stats(self) -> dict[str, Any]:
        """What `raspberry cache stats` prints: totals, per model and per build."""
        r, lg = RESPONSES.c, LEDGER.c
        with self._engine.connect() as conn:
            models = {
                model: {
                    "responses": n,
                    "tokens_in": tin or 0,
                    "tokens_out": tout or 0,
                    "tokens_cache_read": read or 0,
                    "tokens_cache_write": written or 0,
                    "cost_usd": round(cost or 0.0, 6),
                }
                for model, n, tin, tout, read, written, cost in conn.execute(
                    select(
                        r.model,
                        func.count(),
                        func.sum(r.tokens_in),
                        func.sum(r.tokens_out),
                        func.sum(r.tokens_cache_read),
                        func.sum(r.tokens_cache_write),
                        func.sum(r.cost_usd),
                    )
                    .group_by(r.model)
                    .order_by(r.model)
                )
            }
            names = conn.execute(select(lg.build_id).union(select(IN_FLIGHT.c.build_id)))
            counts = dict(
                conn.execute(select(lg.build_id, func.count()).group_by(lg.build_id)).all()
            )
        builds = {}
        for (build,) in sorted(names):
            if build:
                bill = paid(self.target, build)
                builds[build] = {
                    "responses_paid": counts.get(build, 0),
                    "cost_usd": round(bill.usd, 6),
                    "unconfirmed_usd": round(bill.unconfirmed_usd, 6),
                }
        size = None
        if "://" not in self.target:
            path = Path(self.target)
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
        return {
            "path": describe(self.target),
            "responses": self.count(),
            "size_mb": round(size / 1e6, 3) if size is not None else None,
            "models": models,
            "builds": builds,
        }

    def close(self) -> None:
        """Nothing to release: the process keeps one engine per state (its connection pool)."""
