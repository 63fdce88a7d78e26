import json
import subprocess
import sys
import threading

import pytest

from raspberry.errors import StoreError
from raspberry.records import Lineage, Question
from raspberry.store import (
    init_manifest,
    read_manifest,
    read_shard,
    set_shard,
    shard_path,
    write_shard,
)


def _questions(n: int, tag: str = "q") -> list[Question]:
    return [
        Question(
            id=f"{tag}{i}",
            source="s",
            task="t",
            prompt=f"p{i}",
            reference_answer="1",
            verification="{}",
            lineage=Lineage(question_id=f"{tag}{i}", stage="questions", config_hash="h"),
        )
        for i in range(n)
    ]


def test_shard_round_trip(tmp_path):
    path = shard_path(tmp_path, "b1", "questions", 3)
    assert path.name == "shard-00003.parquet" and path.parent.name == "questions"
    rows = _questions(5)
    write_shard(path, rows, Question)
    assert read_shard(path, Question) == rows


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = shard_path(tmp_path, "b1", "questions", 0)
    write_shard(path, _questions(3, "old"), Question)
    import pyarrow.parquet as pq

    def half_then_crash(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        write_shard(path, _questions(9, "new"), Question)
    assert [q.id for q in read_shard(path, Question)] == ["old0", "old1", "old2"]
    assert list(path.parent.iterdir()) == [path]


def test_sigkill_during_write_leaves_old_file_intact(tmp_path):
    path = shard_path(tmp_path, "b1", "questions", 0)
    write_shard(path, _questions(3, "old"), Question)
    # The child starts writing a new shard and is killed halfway through the Parquet write.
    child = f"""
import os, signal, pyarrow.parquet as pq
from pathlib import Path
from raspberry.records import Question
from raspberry.store import write_shard
from tests.test_store import _questions
def die(table, where, **kw):
    open(where, "wb").write(b"PAR1 half a file")
    os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = die
write_shard(Path({str(path)!r}), _questions(50, "new"), Question)
"""
    proc = subprocess.run(
        [sys.executable, "-c", child],
        cwd=str(tmp_path.parent.parent),
        env={"PYTHONPATH": str(__import__("conftest").ROOT)},
        timeout=60,
    )
    assert proc.returncode == -9
    assert [q.id for q in read_shard(path, Question)] == ["old0", "old1", "old2"]


def test_corrupt_shard_is_a_clear_error(tmp_path):
    path = shard_path(tmp_path, "b1", "questions", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(StoreError, match="corrupt or unreadable shard"):
        read_shard(path, Question)


def test_manifest_parallel_updates_are_not_lost(tmp_path):
    init_manifest(tmp_path, "b1", {"questions": "h"})

    def mark(i: int) -> None:
        set_shard(tmp_path, "b1", "dialogues", i, {"state": "done", "rows_out": i})

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shards = read_manifest(tmp_path, "b1")["stages"]["dialogues"]
    assert len(shards) == 24 and shards["shard-00007"]["rows_out"] == 7


def test_manifest_of_another_build_is_refused(tmp_path):
    init_manifest(tmp_path, "b1", {})
    (tmp_path / "b2").mkdir()
    manifest = json.loads((tmp_path / "b1" / "manifest.json").read_text())
    (tmp_path / "b2" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="belongs to build 'b1'"):
        read_manifest(tmp_path, "b2")


def test_bad_shard_state_rejected(tmp_path):
    init_manifest(tmp_path, "b1", {})
    with pytest.raises(ValueError):
        set_shard(tmp_path, "b1", "questions", 0, {"state": "finished"})
