"""Durable, content-addressed request cache in SQLite (WAL).

Each response is committed as it arrives, so a killed build, resumed, re-sends only the
requests that were in flight. Several processes may share one cache file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from raspberry.llm.types import Completion


def request_key(**parts: Any) -> str:
    """Hash of everything that determines a response: provider, base_url, model, messages, ..."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class RequestCache:
    def __init__(self, path: str | Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every put is its own committed transaction.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "completion TEXT NOT NULL, created_at REAL NOT NULL)"
        )

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        return Completion.model_validate_json(row[0]) if row else None

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)",
            (key, completion.model, completion.model_dump_json(), time.time()),
        )

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
