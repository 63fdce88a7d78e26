"""The gateway's state database fails mid-build (a real PostgreSQL server, stopped or frozen):
the build ends within a minute with one line naming the database and the fix, exit 3, and once
the database is back a rerun completes, every answer paid booked once and none bought again."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest
from conftest import CLI, ROOT, external_sim_dict, run_cli, write_config
from pg_server import bin_dir, running_postgres
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from sqlalchemy import select

from raspberry.llm.state import LEDGER, engine_for

MODELS = ("sim-teacher", "sim-user-standin", "sim-judge", "sim-rewriter")

if bin_dir() is None and not os.environ.get("CI"):
    pytest.skip("SKIPPED LOUDLY: PostgreSQL is not installed; `make test` installs it",
                allow_module_level=True)  # fmt: skip


@pytest.mark.parametrize("fault", ["stopped", "frozen", "restarted"])
def test_a_lost_database_ends_the_build_in_a_minute_and_a_rerun_completes(
    tmp_path, prefect_api, fault
):
    env = {**os.environ, "RB_FAKE": "sk-fake"}
    with running_postgres() as pg, running_sim(SimConfig(latency_ms=100, seed=8)) as url:
        data = external_sim_dict(tmp_path, url, 10, "cache.sqlite", max_concurrency=4,
                                 key_env="RB_FAKE")  # fmt: skip
        data["gateway"]["state_url"] = pg.url
        data["prices"] = {m: {"input_per_mtok": 3.0, "output_per_mtok": 15.0} for m in MODELS}
        config = write_config(tmp_path, data)
        args = ["build", "--config", str(config), "--build-id", "b"]
        proc = subprocess.Popen([*CLI, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

        def answered(model: str) -> int:
            return httpx.get(f"{url}/_sim/stats").json().get(f"model:{model}", 0)

        deadline = time.time() + 300
        while answered("sim-user-standin") < 10:  # dialogues under way
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        lost_at = time.monotonic()
        pg.freeze() if fault == "frozen" else pg.stop()
        if fault == "restarted":
            pg.start()
        out, err = proc.communicate(timeout=180)
        took = time.monotonic() - lost_at
        print(f"\n{fault}: the build ended {took:.1f} s after the database was lost; "
              f"exit {proc.returncode}; last line: {err.strip().splitlines()[-1]}")  # fmt: skip
        lines = [line for line in err.splitlines() if line.strip()]
        assert "Traceback" not in err
        if fault == "restarted" and proc.returncode == 0:
            pass  # back before the build needed it: the pool reconnected
        else:
            assert took <= 60
            assert proc.returncode == 3
            assert lines[-1].startswith(f"error: the gateway state database {pg.url} did not")
            pg.thaw() if fault == "frozen" else pg.start() if fault == "stopped" else None
            rerun = run_cli("rerun", "b", "--output-dir", data["output_dir"], "--json", env=env)
            assert rerun.returncode == 0, rerun.stderr[-2000:]
            assert json.loads(rerun.stdout.strip().splitlines()[-1])["state"] == "completed"
        served = httpx.get(f"{url}/_sim/stats").json()["requests"]
        with engine_for(pg.url).connect() as conn:
            lines = conn.execute(select(LEDGER.c.key, LEDGER.c.unconfirmed)).all()
        unconfirmed = sum(1 for _, u in lines if u)
        print(f"served {served}; ledger lines {len(lines)}, {unconfirmed} unconfirmed")
        # Every answer the server gave is booked at its real cost (those that came while the
        # database was away waited in the spool), and none was bought twice.
        assert len(lines) == served and unconfirmed == 0
        assert len({key for key, _ in lines}) == served
