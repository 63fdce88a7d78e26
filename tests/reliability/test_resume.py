"""SIGKILL a build in the middle of the dialogues stage, resume it, and count what was paid twice.

The simulator runs outside the build so that its request counter spans both runs. Every request
that reached it was either answered and committed to the request cache, or in flight at the kill;
only the latter may be sent again. The resumed output equals an uninterrupted build's.
"""

import json
import os
import sqlite3

import httpx
import pyarrow.parquet as pq
from conftest import external_sim_dict, kill_build_when, run_cli, shard_file, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

CONCURRENCY, PARALLEL_SHARDS = 8, 2


def _config(tmp_path, url, name, cache):
    data = external_sim_dict(tmp_path, url, 30, cache, CONCURRENCY, key_env="RB_TEST_KEY")
    data["run"] = {"parallel_shards": PARALLEL_SHARDS}
    return write_config(tmp_path, data, name)


def _args(config, build_id):
    return [
        "build",
        "--config",
        str(config),
        "--build-id",
        build_id,
        "--stages",
        "candidates,questions,dialogues",
        "--json",
    ]


def _cached(path) -> int:
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_midway_then_resume(tmp_path, prefect_api):
    env = {**os.environ, "RB_TEST_KEY": "sk-test-not-a-real-key"}
    with running_sim(SimConfig(latency_ms=150, seed=4)) as url:

        def served() -> int:
            return httpx.get(f"{url}/_sim/stats").json().get("requests", 0)

        config = _config(tmp_path, url, "a.yaml", "cache-a.sqlite")
        kill_build_when(
            _args(config, "killed"), env, lambda: _cached(tmp_path / "cache-a.sqlite") >= 120
        )
        at_kill = _cached(tmp_path / "cache-a.sqlite")
        served_before = served()
        in_flight = served_before - at_kill
        assert 0 <= in_flight <= CONCURRENCY * PARALLEL_SHARDS
        assert (
            not shard_file(tmp_path / "builds", "killed", "dialogues", 0).exists()
            or not shard_file(tmp_path / "builds", "killed", "dialogues", 1).exists()
        )

        resumed = run_cli(*_args(config, "killed"), env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        summary = json.loads(resumed.stdout.strip().splitlines()[-1])
        total = _cached(tmp_path / "cache-a.sqlite")
        # Sent again: at most the requests that were in flight at the kill.
        assert served() - total == in_flight
        assert summary["stages"]["dialogues"]["cache_hits"] >= at_kill - in_flight
        assert summary["stages"]["dialogues"]["requests_sent"] == served() - served_before

        # An uninterrupted build with its own cache writes the same dialogues.
        clean = _config(tmp_path, url, "b.yaml", "cache-b.sqlite")
        done = run_cli(*_args(clean, "clean"), env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    for shard in range(2):
        killed = pq.read_table(shard_file(tmp_path / "builds", "killed", "dialogues", shard))
        uninterrupted = pq.read_table(shard_file(tmp_path / "builds", "clean", "dialogues", shard))
        assert killed.to_pylist() == uninterrupted.to_pylist()
