"""Where a build's files live, and how they are written so that a crash never leaves half a file.

Layout: <output_dir>/<build_id>/<stage>/shard-00000.parquet, <build_id>/manifest.json and
<build_id>/exports/. Every write goes to a temporary file in the same folder, is fsynced, then
renamed over the target, so readers see the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from raspberry.errors import StoreError
from raspberry.records import R, Row, from_table, schema, to_table

SHARD_STATES = ("pending", "done", "failed")


def plain_name(text: str, longest: int = 128) -> bool:
    """A name that can only be a folder inside another, never a path out of it: letters, digits,
    '.', '_' and '-', starting with a letter or digit, no '..'."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)) and (
        len(text) <= longest and ".." not in text
    )


def check_build_id(build_id: str) -> str:
    if not plain_name(build_id):
        raise StoreError(
            f"build id {build_id!r} is not a plain name: use letters, digits, '.', '_' and '-' "
            "(no '/', no '..'; at most 128 characters)"
        )
    return build_id


def build_dir(output_dir: str | Path, build_id: str) -> Path:
    return Path(output_dir) / check_build_id(build_id)


def _writer_lock(output_dir: str | Path, build_id: str) -> Path:
    return (build_dir(output_dir, build_id) / ".writer.lock").resolve()


def build_writer(output_dir: str | Path, build_id: str) -> str | None:
    """Who is writing the build now ("pid N on HOST"), or None."""
    path = _writer_lock(output_dir, build_id)
    if not path.exists():
        return None
    with open(path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.read().strip() or "another process"
    return None


class BuildBusy(StoreError):
    """Another process is writing this build."""


_HELD: dict[Path, list[Any]] = {}  # lock path -> [open file, depth], for this process
_HELD_LOCK = threading.Lock()


@contextlib.contextmanager
def build_lock(output_dir: str | Path, build_id: str) -> Iterator[None]:
    """Hold the build's writer lock: one process writes a build at a time. Taken again by the
    same process (the CLI, then its flow) it nests; the OS frees it when its holder dies."""
    path = _writer_lock(output_dir, build_id)
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(path, "a+")  # noqa: SIM115 - held until the outermost exit
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                lock.close()
                raise BuildBusy(
                    f"build '{build_id}' is already being written by {holder}; wait for it to "
                    "end (`raspberry status`) or use another --build-id"
                ) from None
            lock.truncate(0)
            lock.write(f"pid {os.getpid()} on {socket.gethostname()}")
            lock.flush()
            held = _HELD[path] = [lock, 0]
        held[1] += 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[path]
                held[0].close()  # releases the lock


def results_dir(output_dir: str | Path) -> Path:
    """Where Prefect keeps the shard tasks' results (their cache), beside the builds they describe,
    so the CLI, a worker and `raspberry serve` all find the same cache for the same build."""
    return (Path(output_dir) / "_prefect_results").resolve()


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_path(output_dir: str | Path, build_id: str, stage: str, index: int) -> Path:
    return build_dir(output_dir, build_id) / stage / f"{shard_name(index)}.parquet"


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside target: on success it replaces target, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _file_mode())  # mkstemp makes 0600, whatever the umask says
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_shard(path: Path, rows: list[Row], row_type: type[Row]) -> str:
    """Write rows atomically; return the file's fingerprint."""
    with atomic_path(path) as tmp:
        pq.write_table(to_table(rows, row_type), tmp)
    return fingerprint(path)


def read_shard(path: Path, row_type: type[R]) -> list[R]:
    return from_table(read_columns(path, row_type), row_type)


def read_columns(path: Path, row_type: type[Row], columns: list[str] | None = None) -> pa.Table:
    """A shard's columns (all by default) as a table: reports over large builds read only the
    columns they need, without building rows."""
    try:
        return pq.read_table(path, schema=schema(row_type), columns=columns)
    except FileNotFoundError:
        raise StoreError(f"shard not found: {path} (run the stage that writes it first)") from None
    except (pa.ArrowException, OSError) as exc:
        raise StoreError(
            f"corrupt or unreadable shard {path}: {exc}; delete it and rerun the build"
        ) from None


def build_input_path(output_dir: str | Path, build_id: str, name: str) -> Path:
    """Where a build-wide input (a table computed once from a whole stage) is kept."""
    return build_dir(output_dir, build_id) / f"{name}.parquet"


def intact(folder: Path, entry: dict[str, Any] | None) -> bool:
    """A done entry whose file exists and is the one recorded (not deleted, not altered)."""
    if not entry or entry.get("state") != "done":
        return False
    path = folder / entry["path"]
    return path.exists() and fingerprint(path) == entry["fingerprint"]


def changed_shards(output_dir: str | Path, manifest: dict[str, Any]) -> list[str]:
    """The done shards ("stage/shard-N") whose file is gone or differs from its fingerprint."""
    folder = build_dir(output_dir, manifest["build_id"])
    return [
        f"{stage}/{name}"
        for stage, shards in manifest["stages"].items()
        for name, entry in sorted(shards.items())
        if entry.get("state") == "done" and not intact(folder, entry)
    ]


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


# --- manifest ---------------------------------------------------------------------------------


def manifest_path(output_dir: str | Path, build_id: str) -> Path:
    return build_dir(output_dir, build_id) / "manifest.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Shards of a stage finish in parallel threads or processes; each updates the manifest under
    # an exclusive lock so no update is lost.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_manifest(output_dir: str | Path, build_id: str) -> dict[str, Any]:
    path = manifest_path(output_dir, build_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"no build '{build_id}' under {output_dir} (no {path})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StoreError(f"corrupt manifest {path}: not valid JSON; restore or delete it") from None
    if isinstance(data, dict):
        missing = [k for k in ("build_id", "stages", "config_hash") if k not in data]
        if missing or not isinstance(data["stages"], dict):
            raise StoreError(
                f"manifest {path} lacks {missing or ['stages']}: not written by Raspberry, or "
                "cut short; restore it, or delete the build folder and build again"
            )
    if not isinstance(data, dict) or data.get("build_id") != build_id:
        other = data.get("build_id") if isinstance(data, dict) else None
        raise StoreError(
            f"manifest {path} belongs to build '{other}', not '{build_id}'; "
            "use that build id or a fresh output folder"
        )
    return data


def init_manifest(output_dir: str | Path, build_id: str, config_hash: dict[str, str]) -> None:
    """Create the manifest, or check that an existing one is this build's."""
    path = manifest_path(output_dir, build_id)
    with _locked(path):
        if path.exists():
            data = read_manifest(output_dir, build_id)
            data["config_hash"] = config_hash
        else:
            data = {
                "build_id": build_id,
                "created_at": time.time(),
                "config_hash": config_hash,
                "stages": {},
                "runs": [],
            }
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def update_manifest(output_dir: str | Path, build_id: str, **changes: Any) -> dict[str, Any]:
    """Apply shard entries (stage -> shard -> entry) and top-level fields under the lock."""
    path = manifest_path(output_dir, build_id)
    with _locked(path):
        data = read_manifest(output_dir, build_id)
        for stage, shards in changes.pop("shards", {}).items():
            data["stages"].setdefault(stage, {}).update(shards)
        for key, value in changes.items():
            if key == "run":  # a run is recorded as it starts, then replaced as it ends
                runs = data.setdefault("runs", [])
                if runs and runs[-1].get("started_at") == value.get("started_at"):
                    runs[-1] = value
                else:
                    runs.append(value)
            else:
                data[key] = value
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))
        return data


def set_shard(
    output_dir: str | Path, build_id: str, stage: str, index: int, entry: dict[str, Any]
) -> None:
    if entry.get("state") not in SHARD_STATES:
        raise ValueError(f"bad shard state {entry.get('state')!r}")
    update_manifest(
        output_dir, build_id, shards={stage: {shard_name(index): {**entry, "at": time.time()}}}
    )
