"""A build's files and its records, on any file system fsspec reaches (storage.py).

Layout under <output_dir>/<build_id>/: <stage>/shard-00000.parquet, a build-wide input as
<name>.parquet, exports/ (or exports-partial/), report.html, and records/. The records are the
manifest, cut so that no two writers ever share a file and no lock is needed, on object storage
too: records/build.json (the build's id and config hashes), records/shards/<stage>/<shard>.json
(each shard's state, written only by that shard's task after its file), records/runs/<start>.json
(one per run), records/<name>.json (a build-wide input's entry, the export settings). `manifest()`
reads them back as one dict.
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

from raspberry.build_files.folder import Folder
from raspberry.build_files.manifest import Manifest, RunRecord, ShardEntry
from raspberry.build_files.records import R, Row, from_table, schema, to_table
from raspberry.errors import StoreError

SHARD_STATES = ("pending", "done", "failed")
RECORDS = "records"
LEGACY_MANIFEST = "manifest.json"  # builds written before the records: read, then converted
# Names a build-level record may not take: record folders and the manifest's own keys.
_NOT_FIELDS = ("build", "shards", "runs", "stages", "build_id", "created_at", "config_hash")


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


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def results_folder(output_dir: str | Path) -> Folder:
    """Where an executor keeps the shard tasks' results (their cache), beside the builds they
    describe, so the CLI, a worker and `raspberry serve` all find the same cache."""
    return Folder(output_dir).sub("_prefect_results")


class BuildBusy(StoreError):
    """Another process is writing this build."""


_HELD: dict[str, list[Any]] = {}  # lock path -> [open file, depth], for this process
_HELD_LOCK = threading.Lock()


class BuildStore:
    """Every read and write of one build."""

    def __init__(self, output_dir: str | Path, build_id: str) -> None:
        self.build_id = check_build_id(build_id)
        self.output_dir = str(output_dir)
        self.files = Folder(output_dir).sub(build_id)

    def __repr__(self) -> str:
        return f"BuildStore({self.files.url()!r})"

    # --- shards and tables ----------------------------------------------------------------

    @staticmethod
    def shard_path(stage: str, index: int) -> str:
        return f"{stage}/{shard_name(index)}.parquet"

    def write_shard(self, stage: str, index: int, rows: list[Row], row_type: type[Row]) -> str:
        """Write a shard whole; return its fingerprint."""
        return self.files.write_table(self.shard_path(stage, index), to_table(rows, row_type))

    def read_shard(self, stage: str, index: int, row_type: type[R]) -> list[R]:
        return from_table(self.read_columns(self.shard_path(stage, index), row_type), row_type)

    def read_columns(
        self, path: str, row_type: type[Row], columns: list[str] | None = None
    ) -> pa.Table:
        """A shard's columns (all by default) as a table: reports over large builds read only the
        columns they need, without building rows."""
        return self.read_table(path, schema(row_type), columns=columns)

    def read_table(self, path: str, table_schema: pa.Schema, **options: Any) -> pa.Table:
        try:
            return self.files.read_table(path, table_schema, **options)
        except FileNotFoundError:
            raise StoreError(
                f"{self.files.url(path)} not found (run the stage that writes it first)"
            ) from None
        except (pa.ArrowException, OSError) as exc:
            raise StoreError(
                f"corrupt or unreadable {self.files.url(path)}: {exc}; delete it and rerun "
                "the build"
            ) from None

    def shard_urls(self, stage: str) -> list[str]:
        """The URLs of a stage's shard files, in order."""
        return [self.files.url(p) for p in self.files.glob(f"{stage}/shard-*.parquet")]

    def intact(self, entry: dict[str, Any] | None) -> bool:
        """A done entry whose file exists and is the one recorded (not deleted, not altered)."""
        if not entry or entry.get("state") != "done":
            return False
        try:
            return self.files.fingerprint(entry["path"]) == entry["fingerprint"]
        except FileNotFoundError:
            return False

    def changed_shards(self, manifest: Manifest) -> list[str]:
        """The done shards ("stage/shard-N") whose file is gone or differs from its fingerprint."""
        return [
            f"{stage}/{name}"
            for stage, shards in manifest["stages"].items()
            for name, entry in sorted(shards.items())
            if entry.get("state") == "done" and not self.intact(entry)
        ]

    def exports(self, partial: bool = False) -> Folder:
        return self.files.sub("exports-partial" if partial else "exports")

    # --- records (the manifest) -----------------------------------------------------------

    def exists(self) -> bool:
        return self.files.exists(f"{RECORDS}/build.json") or self.files.exists(LEGACY_MANIFEST)

    def manifest(self) -> Manifest:
        """The build's records as one dict: build_id, created_at, config_hash, stages (stage ->
        shard -> entry), runs (oldest first), and each build-level field."""
        records = self.files.path(RECORDS)
        try:
            found = self.files.fs.find(records)
        except FileNotFoundError:
            found = []
        if not found:
            if self.files.exists(LEGACY_MANIFEST):
                return self._legacy()
            raise StoreError(
                f"no build '{self.build_id}' under {self.output_dir} (no {self.files.url(RECORDS)})"
            )
        texts = self.files.fs.cat([p for p in found if p.endswith(".json")])
        data: Manifest = {"stages": {}, "runs": []}
        for path, raw in sorted(texts.items()):
            rel = path[len(records.rstrip("/")) + 1 :]
            value = self._parse(self.files.url(f"{RECORDS}/{rel}"), raw)
            parts = rel[: -len(".json")].split("/")
            if parts == ["build"]:
                data.update(value)
            elif parts[0] == "shards" and len(parts) == 3:
                data["stages"].setdefault(parts[1], {})[parts[2]] = value
            elif parts[0] == "runs":
                data["runs"].append(value)
            elif len(parts) == 1:
                data[parts[0]] = value
        if data.get("build_id") != self.build_id:
            raise StoreError(
                f"records under {self.files.url(RECORDS)} belong to build "
                f"'{data.get('build_id')}', not '{self.build_id}'; use that build id or a fresh "
                "output folder"
            )
        data["runs"].sort(key=lambda run: run.get("started_at", 0))
        return data

    def _parse(self, url: str, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(
                f"corrupt record {url}: not valid JSON; delete it and rerun build "
                f"'{self.build_id}' (what it recorded is computed again)"
            ) from None

    def _legacy(self) -> dict[str, Any]:
        """A build written before the records: its single manifest.json."""
        url = self.files.url(LEGACY_MANIFEST)
        data = self._parse(url, self.files.read_bytes(LEGACY_MANIFEST))
        if isinstance(data, dict):
            missing = [k for k in ("build_id", "stages", "config_hash") if k not in data]
            if missing or not isinstance(data["stages"], dict):
                raise StoreError(
                    f"manifest {url} lacks {missing or ['stages']}: not written by Raspberry, or "
                    "cut short; restore it, or delete the build folder and build again"
                )
        if not isinstance(data, dict) or data.get("build_id") != self.build_id:
            other = data.get("build_id") if isinstance(data, dict) else None
            raise StoreError(
                f"manifest {url} belongs to build '{other}', not '{self.build_id}'; "
                "use that build id or a fresh output folder"
            )
        return data

    def _write_record(self, rel: str, value: Any) -> None:
        self.files.write_text(f"{RECORDS}/{rel}.json", json.dumps(value, indent=2, sort_keys=True))

    def init(self, config_hash: dict[str, str]) -> None:
        """Record the build's identity and config hashes; an existing build must be this one (one
        written as a single manifest.json is converted to records here, under the writer lock)."""
        if self.exists():
            data = self.manifest()
            if not self.files.exists(f"{RECORDS}/build.json"):
                for stage, shards in data["stages"].items():
                    for name, entry in shards.items():
                        self._write_record(f"shards/{stage}/{name}", entry)
                for run in data.get("runs", []):
                    self.record_run(run)
                for key, value in data.items():
                    if key not in _NOT_FIELDS:
                        self.record(key, value)
            created = data.get("created_at", time.time())
        else:
            created = time.time()
        identity = {"build_id": self.build_id, "created_at": created, "config_hash": config_hash}
        self._write_record("build", identity)
        self.files.remove(LEGACY_MANIFEST)

    def record_shard(self, stage: str, index: int, entry: ShardEntry) -> None:
        if entry.get("state") not in SHARD_STATES:
            raise ValueError(f"bad shard state {entry.get('state')!r}")
        self._write_record(f"shards/{stage}/{shard_name(index)}", {**entry, "at": time.time()})

    def record(self, name: str, value: Any) -> None:
        """A build-level field: a build-wide input's entry, the export settings."""
        if not plain_name(name) or name in _NOT_FIELDS:
            raise ValueError(f"bad record name {name!r}")
        self._write_record(name, value)

    def record_run(self, run: RunRecord) -> None:
        """A run, recorded as it starts and replaced as it ends (keyed by its start time)."""
        self._write_record(f"runs/{run['started_at']:.6f}", run)

    # --- the writer lock --------------------------------------------------------------------

    def _lock_path(self) -> Path:
        """The writer lock's file: in the build folder on a local disk; on other backends (which
        have no file locks) in this machine's temp folder, so the lock holds between processes of
        one machine only."""
        if (local := self.files.local_path(".writer.lock")) is not None:
            return local.resolve()
        key = hashlib.sha256(self.files.url().encode()).hexdigest()[:24]
        return Path(tempfile.gettempdir()) / "raspberry-locks" / f"{key}.lock"

    def writer(self) -> str | None:
        """Who is writing the build now ("pid N on HOST"), or None."""
        path = self._lock_path()
        if not path.exists():
            return None
        with open(path) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return lock.read().strip() or "another process"
        return None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the build's writer lock: one process writes a build at a time. Taken again by the
        same process (the CLI, then its flow) it nests; the OS frees it when its holder dies."""
        path = self._lock_path()
        key = str(path)
        with _HELD_LOCK:
            held = _HELD.get(key)
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
                        f"build '{self.build_id}' is already being written by {holder}; wait for "
                        "it to end (`raspberry status`) or use another --build-id"
                    ) from None
                lock.truncate(0)
                lock.write(f"pid {os.getpid()} on {socket.gethostname()}")
                lock.flush()
                held = _HELD[key] = [lock, 0]
            held[1] += 1
        try:
            yield
        finally:
            with _HELD_LOCK:
                held[1] -= 1
                if held[1] == 0:
                    del _HELD[key]
                    held[0].close()  # releases the lock
