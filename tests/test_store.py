import json
import multiprocessing
import os
import subprocess
import sys
import threading

import pytest

from raspberry.build_files.records import Lineage, Question
from raspberry.build_files.store import BuildStore
from raspberry.errors import StoreError


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


@pytest.fixture(params=["local", "memory"])
def output_dir(request, tmp_path):
    """The same store on the local disk and on fsspec's in-memory file system (no rename)."""
    if request.param == "local":
        yield str(tmp_path)
        return
    yield f"memory://{tmp_path.name}"
    import fsspec

    memory = fsspec.filesystem("memory")
    if memory.exists(f"/{tmp_path.name}"):
        memory.rm(f"/{tmp_path.name}", recursive=True)


def test_shard_round_trip_and_fingerprint(output_dir):
    store = BuildStore(output_dir, "b1")
    assert store.shard_path("questions", 3) == "questions/shard-00003.parquet"
    rows = _questions(5)
    fp = store.write_shard("questions", 3, rows, Question)
    assert store.read_shard("questions", 3, Question) == rows
    assert store.files.fingerprint("questions/shard-00003.parquet") == fp
    assert store.shard_urls("questions") == [store.files.url("questions/shard-00003.parquet")]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    store = BuildStore(tmp_path, "b1")
    store.write_shard("questions", 0, _questions(3, "old"), Question)

    def no_space(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="disk full"):
        store.write_shard("questions", 0, _questions(9, "new"), Question)
    monkeypatch.undo()
    assert [q.id for q in store.read_shard("questions", 0, Question)] == ["old0", "old1", "old2"]
    assert os.listdir(tmp_path / "b1" / "questions") == ["shard-00000.parquet"]


def test_sigkill_during_write_leaves_old_file_intact(tmp_path):
    store = BuildStore(tmp_path, "b1")
    store.write_shard("questions", 0, _questions(3, "old"), Question)
    # The child writes a new shard and is killed after its bytes are down, before the rename.
    child = f"""
import os, signal
from raspberry.build_files.records import Question
from raspberry.build_files.store import BuildStore
from tests.test_store import _questions
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
BuildStore({str(tmp_path)!r}, "b1").write_shard("questions", 0, _questions(50, "new"), Question)
"""
    proc = subprocess.run(
        [sys.executable, "-c", child],
        cwd=str(tmp_path),
        env={"PYTHONPATH": str(__import__("conftest").ROOT)},
        timeout=60,
    )
    assert proc.returncode == -9
    assert [q.id for q in store.read_shard("questions", 0, Question)] == ["old0", "old1", "old2"]


def test_corrupt_shard_is_a_clear_error(output_dir):
    store = BuildStore(output_dir, "b1")
    store.files.write_bytes("questions/shard-00000.parquet", b"not parquet at all")
    with pytest.raises(StoreError, match="corrupt or unreadable .*shard-00000.parquet"):
        store.read_shard("questions", 0, Question)
    with pytest.raises(StoreError, match="not found"):
        store.read_shard("questions", 1, Question)


def test_parallel_records_need_no_lock(output_dir):
    store = BuildStore(output_dir, "b1")
    store.init({"questions": "h"})

    def mark(i: int) -> None:
        store.record_shard("dialogues", i, {"state": "done", "rows_out": i})

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shards = store.manifest()["stages"]["dialogues"]
    assert len(shards) == 24 and shards["shard-00007"]["rows_out"] == 7


def _record_many(output_dir: str, first: int) -> None:
    store = BuildStore(output_dir, "b1")
    for i in range(first, first + 10):
        store.record_shard("dialogues", i, {"state": "done", "rows_out": i})


def test_records_from_many_processes_are_all_kept(tmp_path):
    store = BuildStore(tmp_path, "b1")
    store.init({})
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_many, args=(str(tmp_path), k * 10)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    shards = store.manifest()["stages"]["dialogues"]
    assert sorted(e["rows_out"] for e in shards.values()) == list(range(40))


def test_manifest_gathers_every_record(output_dir):
    store = BuildStore(output_dir, "b1")
    store.init({"questions": "h"})
    store.record_run({"started_at": 2.0, "state": "completed"})
    store.record_run({"started_at": 1.0, "state": "failed"})
    store.record_run({"started_at": 2.0, "state": "running"})  # the same run, replaced
    store.record("export", {"license": "mit"})
    manifest = store.manifest()
    assert manifest["build_id"] == "b1" and manifest["config_hash"] == {"questions": "h"}
    assert [r["state"] for r in manifest["runs"]] == ["failed", "running"]
    assert manifest["export"] == {"license": "mit"}
    for reserved in ("runs", "stages", "config_hash"):
        with pytest.raises(ValueError):
            store.record(reserved, {})


def test_intact_and_changed_shards(output_dir):
    store = BuildStore(output_dir, "b1")
    store.init({})
    for i in range(2):
        fp = store.write_shard("questions", i, _questions(2, f"s{i}"), Question)
        path = store.shard_path("questions", i)
        store.record_shard("questions", i, {"state": "done", "path": path, "fingerprint": fp})
    manifest = store.manifest()
    assert store.changed_shards(manifest) == []
    store.write_shard("questions", 1, _questions(3, "other"), Question)
    assert store.changed_shards(manifest) == ["questions/shard-00001"]
    store.files.remove(store.shard_path("questions", 0))
    assert store.changed_shards(manifest) == ["questions/shard-00000", "questions/shard-00001"]


def test_records_of_another_build_are_refused(tmp_path):
    BuildStore(tmp_path, "b1").init({})
    (tmp_path / "b2" / "records").mkdir(parents=True)
    text = (tmp_path / "b1" / "records" / "build.json").read_text()
    (tmp_path / "b2" / "records" / "build.json").write_text(text)
    with pytest.raises(StoreError, match="belong to build 'b1'"):
        BuildStore(tmp_path, "b2").manifest()


def test_corrupt_record_is_a_clear_error(tmp_path):
    store = BuildStore(tmp_path, "b1")
    store.init({})
    (tmp_path / "b1" / "records" / "export.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt record .*export.json"):
        store.manifest()


def test_a_build_written_as_one_manifest_is_read_then_converted(tmp_path):
    legacy = {
        "build_id": "old",
        "created_at": 5.0,
        "config_hash": {"questions": "h"},
        "stages": {"questions": {"shard-00000": {"state": "done", "rows_out": 3}}},
        "runs": [{"started_at": 7.0, "state": "completed"}],
        "export": {"license": "mit"},
    }
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(legacy))
    store = BuildStore(tmp_path, "old")
    assert store.exists() and store.manifest() == legacy
    store.init({"questions": "h2"})
    assert not (tmp_path / "old" / "manifest.json").exists()
    assert store.manifest() == {**legacy, "config_hash": {"questions": "h2"}}
    assert store.manifest()["stages"]["questions"]["shard-00000"]["rows_out"] == 3


def test_bad_shard_state_rejected(tmp_path):
    store = BuildStore(tmp_path, "b1")
    store.init({})
    with pytest.raises(ValueError):
        store.record_shard("questions", 0, {"state": "finished"})


def test_no_build_is_a_clear_error(output_dir):
    with pytest.raises(StoreError, match="no build 'nope'"):
        BuildStore(output_dir, "nope").manifest()


def test_a_shard_from_before_a_field_existed_reads_with_its_default(tmp_path):
    """Dialogue rows written before turns kept the teacher's thinking still read."""
    import pyarrow as pa

    from raspberry.build_files.records import Dialogue, Lineage, Turn, to_table

    row = Dialogue(
        id="d", question_id="q", sample_index=0, attempts=1, solved=True, solved_at_turn=1,
        stop_reason="solved", final_answer="4", nudges_rejected=0, tokens_in=5, tokens_out=3,
        cost_usd=0.0, lineage=Lineage(question_id="q", config_hash="h"),
        turns=[Turn(role="user", content="2+2?", tokens=0), Turn(role="assistant",
               content="Final answer: 4", tokens=3, thinking="add")],
    )  # fmt: skip
    old = to_table([row], Dialogue).to_pylist()
    for r in old:
        del r["tokens_thinking"]
        for t in r["turns"]:
            del t["thinking"]
    store = BuildStore(tmp_path, "b")
    store.files.write_table(BuildStore.shard_path("dialogues", 0), pa.Table.from_pylist(old))
    (back,) = store.read_shard("dialogues", 0, Dialogue)
    assert back.tokens_thinking == 0 and [t.thinking for t in back.turns] == ["", ""]
    assert back.turns[1].content == "Final answer: 4"
