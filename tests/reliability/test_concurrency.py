"""Two builds at once, on different build ids, in two processes that share one request cache and
one output folder: both complete, the cache is intact and holds one response per distinct request,
no response is lost, and the two builds' rows are the same."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import httpx
import pyarrow.parquet as pq
from conftest import CLI, ROOT, config_dict, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim


def _sft(out, build):
    rows = []
    for path in sorted((out / build / "sft").glob("shard-*.parquet")):
        rows += [(r["id"], r["response"]) for r in pq.read_table(path).to_pylist()]
    return sorted(rows)


def test_two_builds_at_once_share_one_cache(tmp_path, prefect_api):
    with running_sim(SimConfig(seed=6, latency_ms=20, jitter_ms=10)) as url:
        data = config_dict(tmp_path, per_task=10, shards=2)
        del data["sim"]
        data["providers"] = {
            "sim_openai": {"kind": "openai_compatible", "base_url": url},
            "sim_anthropic": {"kind": "anthropic", "base_url": url, "api_key_env": "RB_FAKE"},
        }
        config = write_config(tmp_path, data)
        env = {**os.environ, "RB_FAKE": "sk-fake"}
        procs = [
            subprocess.Popen(
                [*CLI, "build", "--config", str(config), "--build-id", build, "--json"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for build in ("left", "right")
        ]
        outputs = [p.communicate(timeout=600) for p in procs]
        served = httpx.get(f"{url}/_sim/stats").json()["requests"]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
        assert json.loads(stdout.strip().splitlines()[-1])["state"] == "completed"
    out = tmp_path / "builds"
    assert _sft(out, "left") == _sft(out, "right") and _sft(out, "left")
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    # Every request either was answered once and cached, or raced its twin from the other build
    # (both sent, one row kept): nothing answered is missing from the cache.
    print(f"\nserved {served} requests, cached {cached} distinct responses")
    assert cached <= served <= 2 * cached
