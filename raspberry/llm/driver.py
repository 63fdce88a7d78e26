"""Statements on the driver's own connection to the gateway's state (state.py), one held by
each thread: on the gateway's path, SQLAlchemy's work around each call (a pooled connection,
its events, an execution context) cost more CPU than the statements themselves."""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from raspberry.llm.state import unavailable


class Prepared:
    """A statement compiled once for an engine's driver, run by DriverTx.execute."""

    def __init__(self, engine: Engine, statement: Any):
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        # Values the statement fixes itself (a column set to None); the rest the caller names.
        self._fixed = {
            compiled.bind_names[b]: b.effective_value for b in compiled.bind_names if not b.required
        }
        self._order = compiled.positiontup  # the driver's positional order (SQLite), or None
        changes = compiled.isinsert or compiled.isupdate or compiled.isdelete
        self.returns_rows = not changes or bool(compiled.returning)
        self.row: Any = None  # the rows' type, made from the first result's columns

    def values(self, given: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        named = {**self._fixed, **given} if self._fixed else given
        return named if self._order is None else [named[n] for n in self._order]


class DriverTx:
    """Statements of one transaction on this thread's driver connection (driver())."""

    def __init__(self, cursor: Any, engine: Engine):
        self._cursor, self.engine = cursor, engine

    def execute(self, statement: Prepared, values: Mapping[str, Any] | None = None) -> list[Any]:
        """Run the statement; its rows (none for a change without RETURNING), named by its
        columns."""
        cursor = self._cursor
        cursor.execute(statement.sql, statement.values(values or {}))
        if not statement.returns_rows:
            return []
        rows = cursor.fetchall()
        if statement.row is None:
            names = [d[0] for d in cursor.description]
            statement.row = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
        return [statement.row(*r) for r in rows]


class _Held(dict[Engine, tuple[int, Any]]):
    """A thread's driver connections (engine -> (pid, connection)), closed as the thread ends."""

    def __del__(self) -> None:
        for pid, conn in self.values():
            if pid == os.getpid():
                with contextlib.suppress(Exception):
                    conn.close()


_DRIVER = threading.local()  # per thread: its _Held


@contextlib.contextmanager
def driver(engine: Engine, *, write: bool = True) -> Iterator[DriverTx]:
    """One transaction on this thread's own driver connection to the state, held from call to
    call (write: a transaction, SQLite's writer lock taken at its start as every SQLAlchemy
    transaction here does; else a read, one round trip on PostgreSQL, whose connection
    autocommits). A PostgreSQL state that does not answer raises StateUnavailable, as
    SQLAlchemy's calls do; the connection is then dropped, and the next call takes a new one."""
    held = getattr(_DRIVER, "held", None)
    if held is None:
        held = _DRIVER.held = _Held()
    postgres = engine.dialect.name == "postgresql"
    pid, conn = held.get(engine, (None, None))
    if conn is None or pid != os.getpid():  # a forked child takes its own
        try:
            # Out of the pool: a thread keeps it until the thread ends, however many threads.
            pooled = engine.raw_connection()
            conn = pooled.dbapi_connection
            pooled.detach()
        except Exception as exc:
            if (lost := unavailable(engine, exc)) is not None:
                raise lost from None
            raise
        if postgres:  # a read alone is one round trip; a transaction says BEGIN itself
            conn.autocommit = True
        held[engine] = (os.getpid(), conn)
    cursor = conn.cursor()
    try:
        if not write:
            yield DriverTx(cursor, engine)
        else:
            cursor.execute("BEGIN" if postgres else "BEGIN IMMEDIATE")
            yield DriverTx(cursor, engine)
            cursor.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(Exception):  # a connection gone with its database: dropped
            if write:
                cursor.execute("ROLLBACK")
        if (lost := unavailable(engine, exc)) is not None:
            held.pop(engine, None)
            with contextlib.suppress(Exception):
                conn.close()
            raise lost from None
        raise
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
