"""Answers that came while the gateway's state database was unavailable: paid for, so kept in a
file of this machine's (one per state) and written to the state the next time a process of this
machine opens it, before anything else is booked there. A request's answer is then served from
the cache, not bought again, and its ledger line replaces its booking."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from raspberry.llm.types import Completion

# (key, completion, build_id, keep, holder, last): the arguments of RequestCache.put
Record = tuple[str, Completion, str | None, bool, str | None, bool]


def spool_path(target: str) -> Path:
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (
        home
        / "raspberry"
        / "unwritten"
        / f"{hashlib.sha256(target.encode()).hexdigest()[:16]}.jsonl"
    )


def keep(target: str, record: Record) -> None:
    """Append one answer; a line is whole or, cut by a crash, skipped on replay."""
    key, completion, build_id, keep_it, holder, last = record
    line = json.dumps([key, completion.model_dump(), build_id, keep_it, holder, last])
    path = spool_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def replay(target: str, write: Callable[[Record], None]) -> int:
    """Write every kept answer; how many. The file is moved aside first, so two processes never
    both write one answer (and book it twice)."""
    path = spool_path(target)
    taken = path.with_suffix(f".{os.getpid()}.replaying")
    try:
        path.rename(taken)
    except FileNotFoundError:
        return 0
    n = 0
    for line in taken.read_text(encoding="utf-8").splitlines():
        try:
            key, completion, build_id, keep_it, holder, last = json.loads(line)
        except ValueError:
            continue  # the last line of a process killed while writing it
        write((key, Completion.model_validate(completion), build_id, keep_it, holder, last))
        n += 1
    taken.unlink()
    return n
