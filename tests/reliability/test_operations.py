"""Operations as a user runs them: `prefect server start` (SQLite) and a process worker as real
processes, the nightly deployment made by `prefect deploy` from prefect.yaml, runs triggered
through the API, their artifacts, a row failing on a simulated outage, the alert it sends, and
the shard of the failed row computed again alone (by `prefect flow-run retry`, then
`raspberry rerun`).

The simulated model server runs outside the builds on a fixed port, so the test can start it with
an outage for one question and restart it healthy.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import ROOT, config_dict, run_cli, source_rows, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.build_files.store import BuildStore
from raspberry.stages.candidates import reasoning_gym_source
from raspberry.stages.config import load_config

BIN = Path(sys.executable).parent
STAGES = ("candidates", "questions", "dialogues", "verdicts", "sft")
CRON, TIMEZONE = "30 3 * * *", "Pacific/Auckland"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class _Ops:
    """The server, the worker, the simulator and the files of this module's builds."""

    def __init__(self, root: Path, api: str, env: dict[str, str]):
        self.root, self.api, self.env = root, api, env
        self.sim_port = _free_port()
        self.out = root / "builds"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, timeout=30)

    def prefect(self, *args: str, extra: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [str(BIN / "prefect"), *args],
            env={**self.env, **(extra or {})},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def deployment(self) -> dict:
        with self.client() as c:
            return c.get("/deployments/name/build_dataset/nightly-build").json()

    def trigger(self, parameters: dict | None = None) -> str:
        url = f"/deployments/{self.deployment()['id']}/create_flow_run"
        with self.client() as c:
            for _ in range(20):  # SQLite busy: the server answers 503, as Prefect's client retries
                r = c.post(url, json={"parameters": parameters or {}})
                if r.status_code != 503:
                    break
                time.sleep(0.5)
            r.raise_for_status()
            return r.json()["id"]

    def flow_run(self, run_id: str) -> dict:
        with self.client() as c:
            return c.get(f"/flow_runs/{run_id}").json()

    def finished(self, run_id: str, timeout: float = 240) -> dict:
        terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        return _wait(
            lambda: (r := self.flow_run(run_id))["state_type"] in terminal and r,
            timeout,
            f"flow run {run_id} to finish",
        )

    def runs_of(self, run_id: str) -> list[str]:
        """The flow run and its stage subflows."""
        with self.client() as c:
            tasks = c.post(
                "/task_runs/filter", json={"task_runs": {"flow_run_id": {"any_": [run_id]}}}
            ).json()
            subflows = c.post(
                "/flow_runs/filter",
                json={"flow_runs": {"parent_task_run_id": {"any_": [t["id"] for t in tasks]}}},
            ).json()
        return [run_id] + [s["id"] for s in subflows]

    def artifacts(self, run_ids: list[str]) -> dict[str, dict]:
        with self.client() as c:
            found = c.post(
                "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": run_ids}}}
            ).json()
        return {a["key"]: a for a in found if a["key"]}


@pytest.fixture(scope="module")
def ops(tmp_path_factory) -> Iterator[_Ops]:
    root = tmp_path_factory.mktemp("ops")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    server_log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    env |= {"PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    worker = None
    try:
        _wait(lambda: _healthy(api), 240, "the Prefect server", every=2)
        ops = _Ops(root, api, env)
        ops.prefect("work-pool", "create", "raspberry", "--type", "process")
        worker_log = (root / "worker.log").open("w")
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "raspberry"],
            env=env,
            cwd=root,  # the deployment's pull step has to move the run into the project
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        yield ops
    finally:
        for proc in (worker, server):
            if proc:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ops_config(ops: _Ops, name: str = "ops.yaml", cache: str = "cache.sqlite") -> Path:
    data = config_dict(ops.root, per_task=4, shards=2)
    del data["sim"]
    url = f"http://127.0.0.1:{ops.sim_port}/v1"
    data |= {
        "name": "ops",
        "schedule": {"cron": CRON, "timezone": TIMEZONE},
        "providers": {"local": {"kind": "openai_compatible", "base_url": url}},
        "models": {
            role: {"provider": "local", "model": f"sim-{role.replace('_', '-')}"}
            for role in ("teacher", "user_standin", "judge", "rewriter")
        },
    }
    # A request the outage hits fails fast; the breaker stays shut for everything else.
    data["gateway"] |= {
        "max_retries": 1,
        "breaker_failures": 1000,
        "cache_path": str(ops.root / cache),
    }
    return write_config(ops.root, data, name)


def test_nightly_deployment_runs_on_a_worker_with_its_artifacts(ops):
    config_path = _ops_config(ops)
    out = ops.prefect("--no-prompt", "deploy", "--name", "nightly-build",
                      extra={"RASPBERRY_CONFIG": str(config_path)})  # fmt: skip
    assert "successfully created" in out
    deployment = ops.deployment()
    schedule = deployment["schedules"][0]["schedule"]
    assert (schedule["cron"], schedule["timezone"]) == (CRON, TIMEZONE)  # from the config
    assert deployment["parameters"] == {"config_path": str(config_path)}
    assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert deployment["global_concurrency_limit"]["limit"] == 1

    with running_sim(SimConfig(), port=ops.sim_port):
        # Two nights due at once: one runs, the other is cancelled rather than overlapping it.
        first, second = ops.trigger(), ops.trigger()
        states = sorted(ops.finished(r)["state_type"] for r in (first, second))
    assert states == ["CANCELLED", "COMPLETED"], states
    run = next(r for r in map(ops.flow_run, (first, second)) if r["state_type"] == "COMPLETED")

    # The build id is the config's name and the date the run was scheduled for, in its timezone.
    when = dt.datetime.fromisoformat(run["expected_start_time"]).astimezone(ZoneInfo(TIMEZONE))
    build_id = f"ops-{when:%Y%m%d}"
    assert run["name"] == f"build-{build_id}"
    assert f"build:{build_id}" in run["tags"] and "nightly" in run["tags"]
    manifest = BuildStore(ops.out, build_id).manifest()
    assert manifest["runs"][-1]["state"] == "completed"

    runs = ops.runs_of(run["id"])
    with ops.client() as c:
        subflows = [c.get(f"/flow_runs/{r}").json() for r in runs[1:]]
    assert sorted(s["name"] for s in subflows) == sorted(f"{build_id}-{s}" for s in STAGES)
    assert all({f"build:{build_id}", f"stage:{s['parameters']['stage']}"} <= set(s["tags"])
               for s in subflows)  # fmt: skip
    artifacts = ops.artifacts(runs)
    for stage in STAGES:
        for kind in ("shards", "funnel", "cost", "preview", "progress"):
            assert f"{kind}-{build_id}-{stage}" in artifacts, (kind, stage, sorted(artifacts))
    shards = json.loads(artifacts[f"shards-{build_id}-dialogues"]["data"])
    assert [s["state"] for s in shards] == ["done", "done"]
    preview = json.loads(artifacts[f"preview-{build_id}-sft"]["data"])
    assert preview and all(row["response"] for row in preview)
    assert artifacts[f"progress-{build_id}-sft"]["data"] == 100.0
    report = (Path(ops.out) / build_id) / "report.html"
    # The report is in the UI itself (Markdown), not a link to a file on the worker's disk.
    markdown = artifacts[f"report-{build_id}"]
    assert markdown["type"] == "markdown" and f"`{report}`" in markdown["data"]
    assert "## Stage funnel" in markdown["data"] and "## Sample rows" in markdown["data"]
    assert report.read_text().count("<svg") >= 6


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_failed_shard_alerts_and_is_computed_again_alone(ops):
    if not ops.deployment().get("id"):
        pytest.skip("needs the deployment made by the test before")
    # A build with its own request cache, so that its requests reach the simulator.
    config_path = _ops_config(ops, "ops-fail.yaml", "cache-fail.sqlite")
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    secret_url = f"http://127.0.0.1:{hook.server_address[1]}/hook?token=s3cret-token"
    proc = run_cli("alerts", env={**ops.env, "RASPBERRY_ALERT_WEBHOOK": secret_url})
    assert proc.returncode == 0, proc.stderr
    with ops.client() as c:
        automations = c.post("/automations/filter", json={}).json()
    assert {a["name"] for a in automations} >= {
        "raspberry: build failed or crashed",
        "raspberry: no completed nightly build",
    }
    stale = next(a for a in automations if a["name"] == "raspberry: no completed nightly build")
    assert stale["trigger"]["posture"] == "Proactive" and stale["trigger"]["within"] == 26 * 3600
    assert "s3cret-token" not in json.dumps(automations)

    # An outage for one question of shard 1: its dialogue fails, the rest of the shard is done.
    config = load_config(config_path)
    marked = source_rows(reasoning_gym_source.SPEC, config.questions, 1)[0][0].prompt
    others = [q.prompt for q in source_rows(reasoning_gym_source.SPEC, config.questions, 0)[0]]
    assert not any(marked in p for p in others)
    with running_sim(SimConfig(fail_containing=[marked]), port=ops.sim_port):
        run_id = ops.trigger({"build_id": "ops-fail", "config_path": str(config_path)})
        assert ops.finished(run_id)["state_type"] == "FAILED"
    manifest = BuildStore(ops.out, "ops-fail").manifest()
    entries = {
        f"{stage}/{name}": entry
        for stage, shards in manifest["stages"].items()
        for name, entry in shards.items()
    }
    assert all(e["state"] == "done" for e in entries.values())
    failed = {k: e["rows_failed"] for k, e in entries.items() if e.get("rows_failed")}
    assert list(failed) == ["dialogues/shard-00001"]
    (label, reason), *more = failed["dialogues/shard-00001"].items()
    assert not more and label.startswith("question ") and "simulated outage" in reason
    dialogues = entries["dialogues/shard-00001"]
    assert dialogues["rows_out"] == dialogues["rows_in"] - 1
    alerts = _wait(
        lambda: [h for h in _Hook.received if "build-ops-fail" in h["subject"]],
        120,
        "the failure alert at the webhook",
    )
    assert "Failed" in alerts[0]["subject"] and "raspberry rerun" in alerts[0]["body"]

    with running_sim(SimConfig(), port=ops.sim_port):
        # The provider is back: retrying the flow run computes the failed row's shard alone.
        ops.prefect("flow-run", "retry", run_id)
        assert ops.finished(run_id)["state_type"] == "COMPLETED"
        manifest = BuildStore(ops.out, "ops-fail").manifest()
        retried = manifest["runs"][-1]
        assert retried["state"] == "completed"
        assert {s: t["computed"] for s, t in retried["stages"].items() if t["computed"]} == {
            s: ["shard-00001"] for s in ("dialogues", "verdicts", "sft")
        }

        # A deleted output is not trusted: `raspberry rerun` computes that shard again, alone.
        ((Path(ops.out) / "ops-fail") / "verdicts" / "shard-00000.parquet").unlink()
        proc = run_cli("rerun", "ops-fail", "--output-dir", str(ops.out), env=ops.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rerun = BuildStore(ops.out, "ops-fail").manifest()["runs"][-1]
    computed = [f"{s}/{n}" for s, t in rerun["stages"].items() for n in t["computed"]]
    assert "verdicts/shard-00000" in computed
    assert set(computed) <= {"verdicts/shard-00000", "sft/shard-00000"}
    assert "run 3 (rerun, completed): computed verdicts/shard-00000" in proc.stdout


def test_serve_runs_the_nightly_build_from_one_process(ops):
    config_path = _ops_config(ops)
    log = (ops.root / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "raspberry_app.cli", "serve", "--config", str(config_path)],
        env=ops.env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # The served deployment replaces the worker's: same name, no work pool, same schedule.
        deployment = _wait(
            # (a 404 has no work pool either; the schedule may be written after the deployment)
            lambda: (
                (d := ops.deployment()).get("id")
                and not d["work_pool_name"]
                and d["schedules"]
                and d
            ),
            120,
            "the served deployment",
        )
        schedule = deployment["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == (CRON, TIMEZONE)
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        with running_sim(SimConfig(), port=ops.sim_port):
            run = ops.finished(ops.trigger({"build_id": "ops-served"}))
        assert run["state_type"] == "COMPLETED", (ops.root / "serve.log").read_text()[-3000:]
        assert BuildStore(ops.out, "ops-served").manifest()["runs"][-1]["state"] == "completed"
    finally:
        serve.terminate()
        serve.wait(timeout=30)
