"""SIGKILL a first run during each of its five stages, resume it with `raspberry rerun` (the run
is recorded as it starts), and compare with a build that was never interrupted: the same rows in
every stage, no shard file corrupt, and no request sent again beyond those in flight at the kill.
(A kill during a shard's write is covered at the store level: tests/test_store.py kills a process
between its temp file and the rename.)"""

from __future__ import annotations

import json
import os

import httpx
import pyarrow.parquet as pq
import pytest
from conftest import external_sim_dict, kill_build_when, run_cli, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from test_resume import _cached

from raspberry.stages import registry

# The stage a kill lands in: the model only that stage asks, and how many answers to wait for.
KILL_POINTS = {
    "candidates": ("sim-question-writer", 10),
    "questions": ("sim-teacher", 20),  # confirmation solutions, before any dialogue
    "dialogues": ("sim-user-standin", 10),
    "verdicts": ("sim-judge", 15),
    "sft": ("sim-rewriter", 5),
}


def _config(tmp_path, url, name, cache):
    data = external_sim_dict(tmp_path, url, 10, cache, max_concurrency=4, key_env="RB_FAKE")
    data["models"]["question_writer"] = {"provider": "local", "model": "sim-question-writer"}
    data["questions"]["synthesis"] = {
        "count": 30,
        "taxonomy": {"domains": {"logistics": ["stock", "shipping"]}, "personas": ["a clerk"]},
    }
    data["questions"]["confirm"] = {"solutions": 3, "rule": "majority"}
    return write_config(tmp_path, data, name)


def _rows(out, build, stage):
    paths = sorted((out / build / stage).glob("shard-*.parquet"))
    return [pq.read_table(p).to_pylist() for p in paths]


def _args(config, build):
    return ["build", "--config", str(config), "--build-id", build, "--json"]


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_kill_during_a_stage_then_resume(tmp_path, prefect_api, stage):
    env = {**os.environ, "RB_FAKE": "sk-fake"}
    model, answers = KILL_POINTS[stage]
    with running_sim(SimConfig(latency_ms=60, seed=8)) as url:

        def stats() -> dict:
            return httpx.get(f"{url}/_sim/stats").json()

        config = _config(tmp_path, url, "a.yaml", "cache-a.sqlite")
        kill_build_when(
            _args(config, "killed"), env, lambda: stats().get(f"model:{model}", 0) >= answers
        )
        at_kill = _cached(tmp_path / "cache-a.sqlite")
        served_before = stats()["requests"]
        in_flight = served_before - at_kill

        resumed = run_cli("rerun", "killed", "--output-dir", str(tmp_path / "builds"), "--json",
                          env=env)  # fmt: skip
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert json.loads(resumed.stdout.strip().splitlines()[-1])["state"] == "completed"
        sent_again = stats()["requests"] - _cached(tmp_path / "cache-a.sqlite")
        print(f"\n{stage}: in flight at the kill {in_flight}, sent again {sent_again}")
        assert 0 <= sent_again <= in_flight

        clean = _config(tmp_path, url, "b.yaml", "cache-b.sqlite")
        done = run_cli(*_args(clean, "clean"), env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = tmp_path / "builds"
    for name in registry.names():
        assert _rows(out, "killed", name) == _rows(out, "clean", name), name
    assert (out / "killed" / "duplicates.parquet").read_bytes() == (
        out / "clean" / "duplicates.parquet"
    ).read_bytes()
