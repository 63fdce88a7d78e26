"""A folder on any fsspec file system (a local path, `s3://bucket/prefix`, `memory://x`, ...),
whose files are always written whole.

What "whole" means depends on the backend, and the build never relies on more than this:

- local file system: the bytes go to a temporary file beside the target, are fsynced, then
  renamed over it (`os.replace` is atomic on POSIX), and the folder is fsynced: a reader sees the
  old file or the new one, never a mix, even after a crash.
- object stores (S3, GCS, Azure): a file is one object, stored by one PUT (or a multipart upload
  that becomes visible only when it completes): a reader sees the old object or the new one.
  There is no rename, and none is needed.
- anything else fsspec reaches (SFTP, FTP, ...): a write may be seen half-done. A build's files
  still count only through their completion records (store.py), which name each file's
  fingerprint and are written after it: a half-written file never matches its record.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from raspberry.errors import StoreError


def digest(data: bytes) -> str:
    """A file's fingerprint: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


class Folder:
    """Files under one root, by paths relative to it ('questions/shard-00000.parquet')."""

    def __init__(self, url: str | Path, fs: fsspec.AbstractFileSystem | None = None) -> None:
        if fs is None:
            try:
                fs, root = fsspec.core.url_to_fs(str(url))
            except (ImportError, ValueError) as exc:  # an unknown protocol, a backend missing
                raise StoreError(
                    f"{url}: no file system for it ({exc}); give a local folder or an fsspec "
                    "URL whose backend is installed (e.g. `pip install s3fs` for s3://)"
                ) from None
        else:
            root = str(url)
        self.fs = fs
        self.root = root.rstrip("/") or "/"

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, rel: str = "") -> str:
        """The backend's own path of rel (no protocol): what `self.fs` methods take."""
        return posixpath.join(self.root, rel) if rel else self.root

    def url(self, rel: str = "") -> str:
        """rel as a URL any fsspec user can open (a plain path on the local file system)."""
        return self.path(rel) if self.local else self.fs.unstrip_protocol(self.path(rel))

    def local_path(self, rel: str = "") -> Path | None:
        return Path(self.path(rel)) if self.local else None

    def sub(self, rel: str) -> Folder:
        return Folder(self.path(rel), self.fs)

    def exists(self, rel: str = "") -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def is_file(self, rel: str) -> bool:
        return bool(self.fs.isfile(self.path(rel)))

    def glob(self, pattern: str) -> list[str]:
        """The files matching pattern, relative to the root, sorted."""
        prefix = self.root.rstrip("/") + "/"
        found = self.fs.glob(self.path(pattern), detail=True)
        return sorted(
            p[len(prefix) :]
            for p, info in found.items()
            if p.startswith(prefix) and info["type"] == "file"
        )

    def read_bytes(self, rel: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(rel)))

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def write_bytes(self, rel: str, data: bytes) -> str:
        """Write rel whole (see the module's note for what that means per backend); return its
        fingerprint."""
        target = self.path(rel)
        if self.local:
            _replace_local(target, data)
        else:
            self.fs.pipe_file(target, data)
        return digest(data)

    def write_text(self, rel: str, text: str) -> str:
        return self.write_bytes(rel, text.encode("utf-8"))

    def write_table(self, rel: str, table: pa.Table) -> str:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return self.write_bytes(rel, sink.getvalue().to_pybytes())

    def read_table(self, rel: str, schema: pa.Schema | None = None, **options: Any) -> pa.Table:
        """A Parquet file as a table (options: columns, filters). FileNotFoundError when it is
        missing; pyarrow's errors when it is not Parquet."""
        return pq.read_table(
            self.path(rel), schema=schema, filesystem=None if self.local else self.fs, **options
        )

    def fingerprint(self, rel: str = "") -> str:
        h = hashlib.sha256()
        with self.fs.open(self.path(rel), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()[:32]

    def remove(self, rel: str) -> None:
        """Remove a file or a folder with everything in it; nothing when it is not there."""
        if self.exists(rel):
            self.fs.rm(self.path(rel), recursive=True)


def _replace_local(target: str, data: bytes) -> None:
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600, whatever the umask says
        os.replace(tmp, target)
        _fsync_dir(folder)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _file_mode() -> int:
    """The mode a new file gets under this process's umask."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # read it by setting it, and put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
