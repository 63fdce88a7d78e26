"""A disk that fills up mid-build (a 600 KiB tmpfs holding the build and its request cache): the
build ends with one line saying so and exit code 3, every shard file and the manifest written so
far stay readable and match their fingerprints, and once there is room the same build id
completes. Needs permission to mount a tmpfs (root); skipped otherwise."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import config_dict, run_cli, write_config

from raspberry.build_files.store import BuildStore
from raspberry.stages import registry


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_full_disk_is_one_line_exit_3_and_a_rerun_completes(tmp_path, prefect_api, small_disk):
    data = config_dict(tmp_path, per_task=16, shards=2)
    data["output_dir"] = str(small_disk / "builds")
    data["gateway"]["cache_path"] = str(small_disk / "cache.sqlite")
    config = write_config(tmp_path, data)

    full = run_cli("build", "--config", str(config), "--build-id", "full")
    assert full.returncode == 3, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the disk is full") and "rerun build 'full'" in last
    store = BuildStore(small_disk / "builds", "full")
    manifest = store.manifest()
    done = [
        (stage, e)
        for stage, shards in manifest["stages"].items()
        for e in shards.values()
        if e["state"] == "done"
    ]
    assert done  # some work was done before the disk filled, and it is intact
    for stage, entry in done:
        assert store.files.fingerprint(entry["path"]) == entry["fingerprint"]
        assert store.read_columns(entry["path"], registry.stage(stage).row_type)  # and it reads

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_cli("build", "--config", str(config), "--build-id", "full", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed" and summary["stages"]["sft"]["rows_out"] > 0
