"""A build killed while its batch runs at the provider: the rerun re-attaches to that batch and
reads its answers instead of submitting them again, and each answer's real cost replaces the
line booked, unconfirmed, when the killed process was found dead."""

from __future__ import annotations

import json
import os
import sqlite3

import httpx
from conftest import external_sim_dict, kill_build_when, run_cli, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.llm.books import paid

WRITTEN = 6


def _rows(cache, query: str) -> list[tuple]:
    with sqlite3.connect(cache) as conn:
        try:
            return conn.execute(query).fetchall()
        except sqlite3.OperationalError:  # not made yet
            return []


def test_a_batch_running_at_a_kill_is_reattached_not_sent_again(tmp_path, prefect_api):
    env = {**os.environ, "RB_FAKE": "sk-fake"}
    cache = tmp_path / "cache.sqlite"
    with running_sim(SimConfig(batch_delay_s=8, seed=2)) as url:
        data = external_sim_dict(tmp_path, url, 2, cache.name, 8, "RB_FAKE")
        data["models"]["question_writer"] = {"provider": "local", "model": "sim-question-writer"}
        data["prices"]["sim-question-writer"] = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
        data["questions"] = {
            "seed": 1,
            "shards": 1,
            "synthesis": {
                "count": WRITTEN,
                "taxonomy": {"domains": {"logistics": ["stock"]}, "personas": ["a clerk"]},
            },
        }
        data["gateway"] |= {"transport": "auto", "batch_poll_s": 0.2, "batch_linger_s": 0.5}
        config = write_config(tmp_path, data)
        args = ["build", "--config", str(config), "--build-id", "killed", "--stages",
                "candidates", "--json"]  # fmt: skip
        # Killed once the batch of every written question is made and recorded, long before
        # it ends.
        kill_build_when(
            args, env, lambda: len(_rows(cache, "SELECT key FROM batch_items")) >= WRITTEN
        )
        stats = httpx.get(f"{url}/_sim/stats").json()
        assert stats["batches"] == 1 and stats["batch_requests"] == WRITTEN
        rerun = run_cli("rerun", "killed", "--output-dir", str(tmp_path / "builds"), "--json",
                        env=env)  # fmt: skip
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
        assert json.loads(rerun.stdout.strip().splitlines()[-1])["state"] == "completed"
        stats = httpx.get(f"{url}/_sim/stats").json()

    answered = _rows(cache, "SELECT key FROM responses")
    # Every request the provider was sent in a batch was sent once: the killed run's six were
    # read from their batch (a writer's reply that failed its checks is asked again, anew).
    assert len(answered) >= WRITTEN and stats["batch_requests"] == len(answered)
    assert not _rows(cache, "SELECT key FROM batch_items")
    lines = _rows(cache, "SELECT key, cost_usd, unconfirmed FROM ledger WHERE build_id = 'killed'")
    assert sorted(k for k, _, _ in lines) == sorted(k for (k,) in answered)
    assert all(unconfirmed is None and cost > 0 for _, cost, unconfirmed in lines)
    bill = paid(str(cache), "killed")
    assert bill.unconfirmed_usd == 0 and abs(bill.usd - sum(c for _, c, _ in lines)) < 1e-9
