"""A whole build on a file system that is not the local disk: fsspec's in-memory one, which has
no rename and no file lock (S3, written by Dask workers: tests/reliability/test_scale_out.py).
Shards, completion records, the duplicates table, the exports, the report and Prefect's task
results all go through the storage layer; a rerun is served from the cache; the local disk gets
nothing of the build."""

from __future__ import annotations

import fsspec
from conftest import config_dict, write_config

from raspberry.build_files.store import BuildStore


def test_a_build_on_a_non_local_file_system(tmp_path, prefect_api, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, config_dict(tmp_path, per_task=2, shards=2))
    out = f"memory://{tmp_path.name}/builds"
    from raspberry_flows.build import build_dataset

    first = build_dataset(config_path=str(config), build_id="m", output_dir=out)
    assert first["state"] == "completed", first
    assert first["output_dir"] == out.replace("memory://", "memory:///")
    store = BuildStore(out, "m")
    manifest = store.manifest()
    assert manifest["duplicates"]["state"] == "done" and store.changed_shards(manifest) == []
    shards = manifest["stages"]["sft"]
    assert set(shards) == {"shard-00000", "shard-00001"}
    sft_rows = sum(e["rows_out"] for e in shards.values())
    assert sft_rows == first["stages"]["sft"]["rows_out"] > 0
    exported = store.exports().read_text("prompt_response.jsonl").splitlines()
    assert len(exported) == first["export_report"]["rows_out"] > 0
    assert store.files.read_text("report.html").startswith("<!DOCTYPE html>")
    memory = fsspec.filesystem("memory")
    assert memory.find(f"/{tmp_path.name}/builds/_prefect_results")  # the tasks' cache
    assert not (tmp_path / "memory:").exists() and not (tmp_path / "builds").exists()

    again = build_dataset(config_path=str(config), build_id="m", output_dir=out)
    assert again["state"] == "completed"
    for name, stage in again["stages"].items():
        assert stage["shards_cached"] == 2 and stage["requests_sent"] == 0, name
    assert len(store.manifest()["runs"]) == 2
    memory.rm(f"/{tmp_path.name}", recursive=True)
