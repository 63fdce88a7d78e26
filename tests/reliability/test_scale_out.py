"""A build spread over Dask worker processes (run.executor: dask), end to end through Prefect: the
same rows as a local build with the gateway state in PostgreSQL, a worker killed mid-stage costs
neither rows nor paid work, and the build's files on S3 (an S3-compatible server the test
starts: moto) are written by the workers. Here, not in `make test`: each starts a cluster and
builds twice (about 4 minutes in all)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator

import boto3
import fsspec
import httpx
import psutil
import pytest
from conftest import CLI, ROOT, config_dict, external_sim_dict, run_cli, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.build_files.records import Question
from raspberry.build_files.store import BuildStore
from raspberry.llm.books import paid


def _rows(out, build_id: str) -> list[tuple[str, str]]:
    path = out / build_id / "exports" / "prompt_response.jsonl"
    return sorted((r["id"], r["response"]) for r in map(json.loads, path.open()))


def _accepted(out, build_id: str) -> list[str]:
    store, ids = BuildStore(out, build_id), []
    for shard in range(2):
        rows = store.read_shard("questions", shard, Question)
        ids += [q.id for q in rows if q.kept]
    return sorted(ids)


def _workers(out, build_id: str, stage: str) -> set[str]:
    shards = BuildStore(out, build_id).manifest()["stages"][stage]
    return {entry["worker"] for entry in shards.values()}


def test_a_build_on_a_local_dask_cluster_gives_the_local_build_s_rows(
    tmp_path, prefect_api, postgres_url
):
    with running_sim(SimConfig(seed=3)) as url:
        data = external_sim_dict(tmp_path, url, 4, "cache.sqlite", 16, "SIM_KEY")
        config = write_config(tmp_path, data)
        env = {**os.environ, "SIM_KEY": "k"}
        out = tmp_path / "builds"
        local = run_cli("build", "--config", str(config), "--build-id", "local", env=env)
        assert local.returncode == 0, local.stderr[-2000:]
        # The gateway's state on PostgreSQL, empty: the Dask workers really ask the simulator.
        data["gateway"]["state_url"] = postgres_url
        config = write_config(tmp_path, data, "dask.yaml")
        before = httpx.get(f"{url}/_sim/stats").json()["requests"]
        spread = run_cli(
            "build", "--config", str(config), "--build-id", "dask",
            "--executor", "dask", "--workers", "3", env=env,
        )  # fmt: skip
        assert spread.returncode == 0, spread.stderr[-2000:]
        assert httpx.get(f"{url}/_sim/stats").json()["requests"] > before
    assert _rows(out, "dask") == _rows(out, "local") and _rows(out, "local")
    assert _accepted(out, "dask") == _accepted(out, "local")
    # The workers paid into the shared ledger: the build's figure is there, not in SQLite.
    assert BuildStore(out, "dask").manifest()["runs"][-1]["paid_usd"] == pytest.approx(
        paid(postgres_url, "dask").usd
    )
    flow = BuildStore(out, "dask").manifest()["runs"][-1]["worker"]
    for stage in ("candidates", "questions", "dialogues", "verdicts", "sft"):
        workers = _workers(out, "dask", stage)
        assert flow not in workers and workers, (stage, workers)
        assert _workers(out, "local", stage) == {
            BuildStore(out, "local").manifest()["runs"][-1]["worker"]
        }


def _busy_worker(cli_pid: int, port: int) -> tuple[psutil.Process, int] | None:
    """A worker process of the build's local cluster with requests open to the simulator, and
    how many."""
    try:
        children = psutil.Process(cli_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            if "spawn_main" not in " ".join(child.cmdline()):
                continue
            open_ = [c for c in child.net_connections() if c.raddr and c.raddr.port == port]
        except psutil.NoSuchProcess:
            continue
        if len(open_) >= 2:
            return child, len(open_)
    return None


def test_a_dask_worker_killed_mid_dialogues_loses_no_row_and_pays_little_twice(
    tmp_path, prefect_api
):
    with running_sim(SimConfig(seed=3, latency_ms=700)) as url:
        port = int(url.rsplit(":", 1)[1])
        data = external_sim_dict(tmp_path, url, 6, "cache.sqlite", 8, "SIM_KEY")
        data["questions"]["shards"] = 4
        config = write_config(tmp_path, data)
        env = {**os.environ, "SIM_KEY": "k"}
        out = tmp_path / "builds"
        args = ["build", "--config", str(config), "--build-id", "b", "--executor", "dask"]
        proc = subprocess.Popen(
            [*CLI, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline, killed = time.time() + 300, None
        while killed is None:
            assert proc.poll() is None and time.time() < deadline, "no dialogue was seen running"
            stats = httpx.get(f"{url}/_sim/stats").json()
            if stats.get("model:sim-user-standin", 0) and (found := _busy_worker(proc.pid, port)):
                killed = found
                killed[0].send_signal(signal.SIGKILL)
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr.decode()[-3000:]
        # The same build run again locally from the cache: its rows are the reference.
        again = run_cli("build", "--config", str(config), "--build-id", "ref", env=env)
        assert again.returncode == 0, again.stderr[-2000:]
    assert _rows(out, "b") == _rows(out, "ref") and len(_rows(out, "b")) > 20
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        twice = db.execute(
            "SELECT COUNT(*) FROM (SELECT key FROM ledger WHERE build_id = 'b' GROUP BY key "
            "HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        ref_paid = db.execute("SELECT COUNT(*) FROM ledger WHERE build_id = 'ref'").fetchone()[0]
    # Answers are committed as they arrive: only requests the killed worker had open can have
    # been paid for and lost, and asked again.
    assert twice <= killed[1], (twice, killed[1])
    assert ref_paid == 0  # everything the build paid for was kept


@pytest.fixture
def s3_server(monkeypatch) -> Iterator[dict[str, str]]:
    """An S3-compatible server (moto in server mode) on loopback, with a bucket; the environment
    that points fsspec's s3fs at it (the build's processes inherit it)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address  # type: ignore[attr-defined]
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        # The form every s3fs version takes: the endpoint as a botocore client argument.
        "FSSPEC_S3": json.dumps({"client_kwargs": {"endpoint_url": endpoint}}),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # fsspec read its FSSPEC_* variables when it was imported: this process is told directly.
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": endpoint}})
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="builds")
    try:
        yield {**env, "endpoint": endpoint}
    finally:
        server.stop()


def test_a_build_on_s3_spread_over_dask_workers(tmp_path, prefect_api, s3_server):
    """Shards written by Dask worker processes to an S3-compatible server: every file of the
    build is an object there, none on the local disk; a rerun is served from the cache."""
    import s3fs

    data = config_dict(tmp_path, per_task=2, shards=2)
    config = write_config(tmp_path, data)
    env = {**os.environ, **{k: v for k, v in s3_server.items() if k != "endpoint"}}
    args = ["--output-dir", "s3://builds/nightly", "--executor", "dask", "--workers", "2"]
    first = run_cli("build", "--config", str(config), "--build-id", "s3", "--json", *args, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed"
    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server["endpoint"]})
    files = s3.find("builds/nightly/s3")
    assert "builds/nightly/s3/sft/shard-00001.parquet" in files
    assert "builds/nightly/s3/records/shards/sft/shard-00001.json" in files
    assert "builds/nightly/s3/exports/prompt_response.jsonl" in files
    assert s3.find("builds/nightly/_prefect_results")  # the tasks' cache, on S3 too
    assert not (tmp_path / "s3:").exists() and not (ROOT / "s3:").exists()
    store = BuildStore("s3://builds/nightly", "s3")
    workers = {e["worker"] for e in store.manifest()["stages"]["sft"].values()}
    assert store.manifest()["runs"][-1]["worker"] not in workers

    again = run_cli("rerun", "s3", "--json", "--output-dir", "s3://builds/nightly", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert rerun["state"] == "completed"
    for name, stage in rerun["stages"].items():
        assert stage["shards_cached"] == 2 and stage["requests_sent"] == 0, name
