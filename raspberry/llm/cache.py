"""Durable, content-addressed request cache in SQLite (WAL).

Each real answer is committed as it arrives, with its stop reason, usage, cost and latency, so a
killed build, resumed, re-sends only the requests that were in flight. Several processes and
builds may share one cache file; a ledger records which build paid for which response, including
an empty, cut or refused completion, which is paid for but not kept as an answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from raspberry.errors import ConfigError
from raspberry.llm.types import Completion

_COLUMNS = {
    "stop_reason": "TEXT",
    "tokens_in": "INTEGER",
    "tokens_out": "INTEGER",
    "cost_usd": "REAL",
    "latency_s": "REAL",
}


def request_key(**parts: Any) -> str:
    """Hash of everything that determines a response: provider, base_url, model, messages, ..."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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


class RequestCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._open()
        except (sqlite3.DatabaseError, IsADirectoryError, NotADirectoryError) as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, disk full: not the user's file
                raise
            raise ConfigError(
                f"gateway.cache_path {self.path} cannot be used as the request cache ({exc}); "
                "point cache_path at a new file, or move what is there away"
            ) from None

    def _open(self) -> None:
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path} is a folder")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every put is its own committed transaction.
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        _set_wal(self._db)
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Several shard threads and processes may open a new cache at once: one sets it up.
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                "completion TEXT NOT NULL, created_at REAL NOT NULL, "
                + ", ".join(f"{name} {kind}" for name, kind in _COLUMNS.items())
                + ")"
            )
            have = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
            for name, kind in _COLUMNS.items():
                if name not in have:  # a cache written by an earlier version
                    self._db.execute(f"ALTER TABLE responses ADD COLUMN {name} {kind}")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS ledger (build_id TEXT NOT NULL, key TEXT NOT NULL, "
                "cost_usd REAL NOT NULL, created_at REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS ledger_build ON ledger (build_id)")

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        return Completion.model_validate_json(row[0]) if row else None

    def put(
        self, key: str, completion: Completion, build_id: str | None = None, keep: bool = True
    ) -> None:
        """Record what a response cost the build that sent it and, when `keep`, store the
        response itself, in one transaction."""
        now = time.time()
        c = completion
        with self._db:
            self._db.execute("BEGIN")
            if keep:
                self._db.execute(
                    "INSERT OR IGNORE INTO responses (key, model, completion, created_at, "
                    "stop_reason, tokens_in, tokens_out, cost_usd, latency_s) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        c.model,
                        c.model_dump_json(),
                        now,
                        c.stop_reason,
                        c.tokens_in,
                        c.tokens_out,
                        c.cost_usd,
                        c.latency_s,
                    ),
                )
            if build_id is not None:
                self._db.execute(
                    "INSERT INTO ledger VALUES (?, ?, ?, ?)", (build_id, key, c.cost_usd, now)
                )

    def spent(self, build_id: str) -> float:
        row = self._db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE build_id = ?", (build_id,)
        ).fetchone()
        return float(row[0])

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        """What `raspberry cache stats` prints: totals, per model and per build."""
        models = {
            model: {
                "responses": n,
                "tokens_in": tin or 0,
                "tokens_out": tout or 0,
                "cost_usd": round(cost or 0.0, 6),
            }
            for model, n, tin, tout, cost in self._db.execute(
                "SELECT model, COUNT(*), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) "
                "FROM responses GROUP BY model ORDER BY model"
            )
        }
        builds = {
            build: {"responses_paid": n, "cost_usd": round(cost, 6)}
            for build, n, cost in self._db.execute(
                "SELECT build_id, COUNT(*), SUM(cost_usd) FROM ledger GROUP BY build_id "
                "ORDER BY build_id"
            )
        }
        size = sum(
            p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file()
        )
        return {
            "path": str(self.path),
            "responses": self.count(),
            "size_mb": round(size / 1e6, 3),
            "models": models,
            "builds": builds,
        }

    def close(self) -> None:
        self._db.close()


def paid(cache_path: str | Path, build_id: str) -> float:
    """What the ledger says a build paid over all its runs, interrupted ones included."""
    if not Path(cache_path).exists():
        return 0.0
    cache = RequestCache(cache_path)
    try:
        return cache.spent(build_id)
    finally:
        cache.close()
