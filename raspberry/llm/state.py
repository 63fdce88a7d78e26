"""Where the gateway's state lives, shared by every process that uses it: the request cache and
its ledger (cache.py), the requests in flight (books.py) and the batches they travel in
(batch.py), the budgets (cost.py) and the rate-limit buckets and pauses (limits.py), in one SQL
database.

`gateway.state_url` names it: unset, the SQLite file at `gateway.cache_path` (the processes of
one machine share it: a build's threads, a local Dask cluster's workers); a `postgresql://` URL,
a PostgreSQL database that processes on many machines share. A password never goes in the URL
(the config is no place for a secret): libpq reads PGPASSWORD, or ~/.pgpass.

Each process says it is alive (`peers`, every HEARTBEAT_S): a request in flight is awaited by
other processes only while its process lives (books.py).

The database is a dependency with timeouts: a PostgreSQL server that does not answer a
statement within STATE_TIMEOUT_S (stopped, frozen, unreachable) raises StateUnavailable, one
line naming it, instead of hanging the build. The gateway's own statements run on each
thread's driver connection (driver.py), which says so in the same words.
"""

from __future__ import annotations

import functools
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    make_url,
)
from sqlalchemy.exc import ArgumentError

from raspberry.errors import ConfigError, StateUnavailable

HEARTBEAT_S = 5.0
ALIVE_S = 30.0  # a process not heard from for this long is gone

META = MetaData()
RESPONSES = Table(
    "responses",
    META,
    Column("key", String(64), primary_key=True),
    Column("model", Text, nullable=False),
    Column("completion", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("stop_reason", Text),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    Column("tokens_cache_read", Integer),
    Column("tokens_cache_write", Integer),
    Column("cost_usd", Float),
    Column("latency_s", Float),
)
LEDGER = Table(
    "ledger",
    META,
    Column("build_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    # 1: the most the request could have cost, booked when it was sent; its process died before
    # the answer came (books.py), so the provider's bill is not known and this is an upper bound.
    Column("unconfirmed", Integer),
    Index("ledger_build", "build_id"),
)
BUDGETS = Table(
    "budgets",
    META,
    Column("build_id", String(200), primary_key=True),
    Column("spent", Float, nullable=False),  # the ledger's sum, kept as each answer is recorded
)
IN_FLIGHT = Table(  # a request booked before it is sent, until its answer is recorded (books.py)
    "in_flight",
    META,
    Column("key", String(64), primary_key=True),
    Column("build_id", String(200), nullable=False),  # "": a gateway of no build
    Column("holder", String(300), nullable=False),  # the process ("host:pid") and its call
    Column("usd", Float, nullable=False),  # the most it may cost
    Column("sent_at", Float),  # None: booked, not sent yet (or its answer recorded)
    Index("in_flight_build", "build_id"),
)
BATCH_ITEMS = Table(  # a request sent in a provider's batch, until its answer is recorded
    "batch_items",
    META,
    Column("key", String(64), primary_key=True),  # the request's key, its custom_id
    Column("provider", String(200), nullable=False),  # the config's provider name
    Column("batch_id", Text, nullable=False),
    Column("submitted_at", Float, nullable=False),
)
BUCKETS = Table(
    "buckets",
    META,
    Column("limit_key", String(400), primary_key=True),
    Column("kind", String(40), primary_key=True),
    Column("per_minute", Float, nullable=False),
    Column("level", Float, nullable=False),
    Column("stamp", Float, nullable=False),
    Column("learnt", Integer, nullable=False),  # 1: from the provider's headers
)
PAUSES = Table(  # per limit: the 429 pause, and the AIMD concurrency factor (limits.py)
    "pauses",
    META,
    Column("limit_key", String(400), primary_key=True),
    Column("until", Float, nullable=False),
    Column("at", Float, nullable=False),
    Column("factor", Float, nullable=False),
    Column("cut_at", Float, nullable=False),
)
PEERS = Table(
    "peers",
    META,
    Column("process", String(200), primary_key=True),
    Column("limit_key", String(400), primary_key=True),  # "": the process itself
    Column("seen_at", Float, nullable=False),
)
# Columns a state of an earlier version may lack, by table.
ADDED_COLUMNS = {
    RESPONSES: (
        "stop_reason",
        "tokens_in",
        "tokens_out",
        "tokens_cache_read",
        "tokens_cache_write",
        "cost_usd",
        "latency_s",
    ),
    LEDGER: ("unconfirmed",),
}
# How long a PostgreSQL state may take to connect, and to answer a statement, before the build
# is told it is unavailable: well inside the minute a build may take to stop on a lost database.
CONNECT_TIMEOUT_S = 10
STATE_TIMEOUT_S = 15.0
# For this long after a state was found unavailable, a new connection to it fails at once: the
# calls queued behind the first do not each wait out the timeouts.
LOST_HOLD_S = 30.0
_LOST: dict[str, tuple[float, str]] = {}  # target -> when it was lost, and why
_TARGETS: dict[Engine, str] = {}  # a PostgreSQL state's engine -> its target, as configured


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _set_wal(db: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    """Switch to WAL. While another connection creates the same new file, SQLite may answer
    "database is locked" at once, without waiting out the busy timeout: so wait here."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_engine(path: Path) -> Engine:
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi: sqlite3.Connection, _: object) -> None:
        dbapi.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
        _set_wal(dbapi)
        dbapi.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: object) -> None:
        # Writers queue at the start of a transaction instead of failing to upgrade a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    return engine


def describe(target: str) -> str:
    """The state's location as a message may show it."""
    if "://" not in target:
        return str(Path(target).resolve())
    return make_url(target).render_as_string(hide_password=True)


def _postgres_engine(url: Any, target: str) -> Engine:
    """An engine whose every call ends within the timeouts: libpq's connect_timeout for a new
    connection, and for a statement a wait that gives up after STATE_TIMEOUT_S. The server's own
    statement_timeout cannot do that: a frozen server enforces nothing."""
    import psycopg

    class TimedConnection(psycopg.Connection):  # type: ignore[type-arg]
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval, STATE_TIMEOUT_S if timeout is None else timeout)
            except psycopg.errors.OperationalError:
                self.close()  # half a conversation: the pool must not hand it out again
                raise

    engine = create_engine(
        url,
        pool_size=8,
        max_overflow=32,
        pool_pre_ping=True,
        pool_timeout=STATE_TIMEOUT_S,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        at, why = _LOST.get(target, (-LOST_HOLD_S, ""))
        if time.monotonic() - at < LOST_HOLD_S:
            raise psycopg.OperationalError(why)
        return TimedConnection.connect(*cargs, **cparams)

    @event.listens_for(engine, "handle_error")
    def _unavailable(ctx: Any) -> None:
        # A pre-ping's failure is the pool's to handle: it reconnects once.
        if not ctx.is_pre_ping and isinstance(ctx.original_exception, psycopg.OperationalError):
            raise _lost(target, ctx.original_exception) from None

    _TARGETS[engine] = target
    return engine


def unavailable(engine: Engine, exc: BaseException) -> StateUnavailable | None:
    """What a driver's error means (driver.py): a PostgreSQL state whose connection failed is
    unavailable, as in SQLAlchemy's calls; None for any other error."""
    import psycopg

    target = _TARGETS.get(engine)
    if target is None or not isinstance(exc, psycopg.OperationalError):
        return None
    return _lost(target, exc)


def _lost(target: str, exc: BaseException) -> StateUnavailable:
    """A PostgreSQL state that did not answer: held as lost for LOST_HOLD_S (new connections
    fail at once), told as one line."""
    said = str(exc).strip().splitlines()
    why = said[0] if said else "no answer"
    now = time.monotonic()
    if now - _LOST.get(target, (-LOST_HOLD_S, ""))[0] >= LOST_HOLD_S:  # not a held loss
        _LOST[target] = (now, why)
    return StateUnavailable.of(describe(target), why)


@functools.cache
def engine_for(target: str) -> Engine:
    """The process's engine for a state target (a SQLite path or a database URL), its tables
    created when missing."""
    if "://" in target:
        try:
            url = make_url(target)
        except ArgumentError:
            raise ConfigError(f"gateway.state_url {target!r} is not a database URL") from None
        if url.password:
            raise ConfigError(
                "gateway.state_url holds a password; remove it from the URL and put it in "
                "PGPASSWORD (or ~/.pgpass)"
            )
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername == "sqlite":
            engine = _sqlite_engine(Path(url.database or ""))
        elif url.drivername.startswith("postgresql"):
            engine = _postgres_engine(url, target)
        else:
            raise ConfigError(
                f"gateway.state_url {describe(target)}: use a postgresql:// URL or a SQLite path"
            )
    else:
        engine = _sqlite_engine(Path(target))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # one process creates the tables at a time
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7215)")
        META.create_all(conn, checkfirst=True)
        for table, names in ADDED_COLUMNS.items():
            have = {c["name"] for c in inspect(conn).get_columns(table.name)}
            for name in names:
                if name not in have:  # a state written by an earlier version
                    kind = table.c[name].type.compile(engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}")
    _start_heartbeat(engine)
    return engine


def _start_heartbeat(engine: Engine) -> None:
    def beat() -> None:
        while True:
            try:
                touch(engine, "")
            except Exception:  # a database down for a while: the next beat tries again
                pass
            time.sleep(HEARTBEAT_S)

    touch(engine, "")
    threading.Thread(target=beat, daemon=True, name="raspberry-state-heartbeat").start()


def insert(engine: Engine, table: Table, **values: object) -> Any:
    """An INSERT in the engine's dialect, which offers ON CONFLICT clauses."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).values(**values)


def upsert(engine: Engine, table: Table, keys: dict[str, object], values: dict[str, object]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET values."""
    stmt = insert(engine, table, **keys, **values)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=values)


def touch(engine: Engine, limit_key: str) -> None:
    """Say that this process is alive (limit_key ""), or that it uses a limit."""
    with engine.begin() as conn:
        conn.execute(
            upsert(
                engine,
                PEERS,
                {"process": this_process(), "limit_key": limit_key},
                {"seen_at": time.time()},
            )
        )
