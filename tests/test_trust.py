"""Issue 18, as a user meets it: what the cache serves, who may write a build, what a bad
request costs. Builds run through the CLI against the session's Prefect server."""

import json
import shutil

import pyarrow.parquet as pq
from conftest import ROOT, config_dict, run_cli, write_config

from raspberry.store import shard_path


def _build(config, build_id="t", *extra):
    proc = run_cli("build", "--config", str(config), "--build-id", build_id, "--json", *extra)
    lines = proc.stdout.strip().splitlines()
    return proc, json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def test_editing_a_prompt_without_a_new_version_recomputes_what_it_shapes(tmp_path, prefect_api):
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    data = config_dict(tmp_path, per_task=2, shards=1, prompts_dir=str(prompts))
    config = write_config(tmp_path, data)
    proc, first = _build(config)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rewriter = prompts / "rewriter.md"
    rewriter.write_text(rewriter.read_text() + "\nKeep every number exactly as written.\n")
    proc, second = _build(config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = second["stages"]
    # What the rewriter prompt shapes is computed again and pays for new requests...
    assert stages["sft"]["shards_cached"] == 0 and stages["sft"]["requests_sent"] > 0
    # ...and nothing else is.
    for stage in ("candidates", "questions", "dialogues", "verdicts"):
        assert stages[stage]["shards_cached"] == 1 and stages[stage]["requests_sent"] == 0
    rows = pq.read_table(shard_path(tmp_path / "builds", "t", "sft", 0)).to_pylist()
    refs = {p for r in rows for p in r["lineage"]["prompts"] if p.startswith("rewriter@")}
    assert len(refs) == 1 and refs.pop().startswith("rewriter@1#")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_request_fails_its_row_not_its_shard(tmp_path, prefect_api):
    from conftest import external_sim_dict

    from raspberry.config import SimConfig, load_config
    from raspberry.questions import reasoning_gym_source
    from raspberry.sim.process import running_sim
    from raspberry.store import build_dir

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = external_sim_dict(tmp_path, url, 2, "cache.sqlite", 16, "SIM_KEY")
    data["gateway"] |= {"max_retries": 1, "breaker_failures": 1000}
    config = write_config(tmp_path, data)
    env = {**__import__("os").environ, "SIM_KEY": "sk-sim"}
    marked = reasoning_gym_source.generate(load_config(config).questions, "h", 1)[0].prompt
    with running_sim(SimConfig(fail_containing=[marked]), port=port):
        proc = run_cli("build", "--config", str(config), "--build-id", "r", "--json", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    dialogues = summary["stages"]["dialogues"]
    assert dialogues["shards_failed"] == 0 and dialogues["shards_done"] == 2
    ((shard, rows),) = dialogues["failed_rows"].items()
    assert shard == "shard-00001" and len(rows) == 1
    assert "simulated outage" in next(iter(rows.values()))
    assert "row failed: dialogues/shard-00001: question" in proc.stdout
    # Every other row went on to the end; the exports say they are partial.
    assert summary["stages"]["sft"]["rows_out"] > 0, json.dumps(summary["stages"])[:3000]
    folder = build_dir(tmp_path / "builds", "r")
    assert not (folder / "exports").exists()
    assert "PARTIAL BUILD" in (folder / "exports-partial" / "README.md").read_text()

    with running_sim(SimConfig(), port=port):
        proc = run_cli("rerun", "r", "--output-dir", str(tmp_path / "builds"), "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed"
    assert "failed_rows" not in summary["stages"]["dialogues"]
    # Only the failed row's dialogue was asked again: at most its max_turns of calls, and more.
    assert 1 <= summary["stages"]["dialogues"]["requests_sent"] <= 8
    assert (folder / "exports" / "README.md").exists() and not (folder / "exports-partial").exists()
