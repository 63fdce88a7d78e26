"""Digests of local files by content, each worked out once per process while the file is
unchanged (its size and mtime): the inputs in a stage's key, the weights of a local model."""

from __future__ import annotations

import hashlib
from pathlib import Path

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, worked out once per process for each (size, mtime); a missing
    or unreadable file is "missing" here (preflight names it)."""
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    seen = (str(path), stat.st_size, stat.st_mtime_ns)
    if seen not in _DIGESTS:
        digest = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return "missing"
        _DIGESTS[seen] = digest.hexdigest()[:32]
    return _DIGESTS[seen]
