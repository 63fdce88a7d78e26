"""Issue 18, as a user meets it: what the cache serves, who may write a build, what a bad
request costs. Builds run through the CLI against the session's Prefect server."""

import json
import shutil

import pyarrow.parquet as pq
from conftest import ROOT, config_dict, run_cli, shard_file, source_rows, write_config

from raspberry.build_files.store import BuildStore


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
    rows = pq.read_table(shard_file(tmp_path / "builds", "t", "sft", 0)).to_pylist()
    refs = {p for r in rows for p in r["lineage"]["prompts"] if p.startswith("rewriter@")}
    assert len(refs) == 1 and refs.pop().startswith("rewriter@1#")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_request_fails_its_row_not_its_shard(tmp_path, prefect_api):
    from conftest import external_sim_dict
    from raspberry_sim.config import SimConfig
    from raspberry_sim.process import running_sim

    from raspberry.stages.candidates import reasoning_gym_source
    from raspberry.stages.config import load_config

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = external_sim_dict(tmp_path, url, 2, "cache.sqlite", 16, "SIM_KEY")
    data["gateway"] |= {"max_retries": 1, "breaker_failures": 1000}
    config = write_config(tmp_path, data)
    env = {**__import__("os").environ, "SIM_KEY": "sk-sim"}
    marked = source_rows(reasoning_gym_source.SPEC, load_config(config).questions, 1)[0][0].prompt
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
    folder = tmp_path / "builds" / "r"
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


def test_one_build_id_has_one_writer(tmp_path, prefect_api):
    import subprocess
    import time

    from conftest import CLI

    config = write_config(tmp_path, config_dict(tmp_path, per_task=4, shards=2))
    first = subprocess.Popen(
        [*CLI, "build", "--config", str(config), "--build-id", "w"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    manifest = tmp_path / "builds" / "w" / "records" / "build.json"
    deadline = time.time() + 120
    while not manifest.exists():
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.05)
    for args in (["build", "--config", str(config), "--build-id", "w"], ["rerun", "w"]):
        started = time.monotonic()
        proc = run_cli(*args, "--output-dir", str(tmp_path / "builds"))
        took = time.monotonic() - started
        assert proc.returncode == 2, proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "build 'w' is already being written by pid" in line
        assert took < 15 and first.poll() is None  # refused before Prefect, not after the build
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out
    # The writer's lock went with it: the same id builds again (from the cache) and status is
    # not told that anyone is writing.
    proc = run_cli("build", "--config", str(config), "--build-id", "w", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(s["requests_sent"] == 0 for s in json.loads(proc.stdout.splitlines()[-1])[
        "stages"].values())  # fmt: skip


def test_a_build_id_or_name_cannot_leave_the_output_folder(tmp_path):
    config = write_config(tmp_path, config_dict(tmp_path, per_task=1, shards=1))
    for build_id in ("../../escaped", "a/b", "..", "/abs"):
        proc = run_cli("build", "--config", str(config), "--build-id", build_id)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "not a plain name" in proc.stderr
    for name in ("../../escaped", "x/y"):
        bad = write_config(tmp_path, config_dict(tmp_path, name=name), "bad.yaml")
        proc = run_cli("build", "--config", str(bad))
        assert proc.returncode == 2 and "name" in proc.stderr, proc.stdout + proc.stderr
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (tmp_path / "builds").exists()
    proc = run_cli("status", "../x", "--output-dir", str(tmp_path / "builds"))
    assert proc.returncode == 2 and "not a plain name" in proc.stderr


def test_rerun_acts_on_the_output_dir_it_is_given(tmp_path, prefect_api):
    config = write_config(tmp_path, config_dict(tmp_path, per_task=1, shards=1))
    proc = run_cli("build", "--config", str(config), "--build-id", "m", "--stages", "candidates")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "builds").rename(tmp_path / "moved")
    proc = run_cli("rerun", "m", "--output-dir", str(tmp_path / "moved"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "builds").exists()  # nothing written where the build used to be
    runs = BuildStore(tmp_path / "moved", "m").manifest()["runs"]
    assert len(runs) == 2 and runs[-1]["output_dir"] == str((tmp_path / "moved").resolve())


def _children(pid: int) -> dict[int, str]:
    """Every live descendant of pid: pid -> command line."""
    from pathlib import Path

    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = {}, {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier}
        for p in frontier:
            try:
                found[p] = (Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
            except OSError:
                pass
    return found


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


def _start_build(tmp_path, env, build_id):
    import subprocess

    from conftest import CLI

    config = write_config(tmp_path, config_dict(tmp_path, per_task=30, shards=2))
    return subprocess.Popen(
        [*CLI, "build", "--config", str(config), "--build-id", build_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _wait_for(what, predicate, timeout=240):
    import time

    deadline = time.time() + timeout
    while not (found := predicate()):
        assert time.time() < deadline, f"{what} did not happen in {timeout} s"
        time.sleep(0.1)
    return found


def test_a_killed_build_leaves_no_prefect_server_behind(tmp_path):
    import os
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    build = _start_build(tmp_path, env, "k")
    try:
        server = _wait_for(
            "the temporary Prefect server",
            lambda: [p for p, cmd in _children(build.pid).items() if "uvicorn" in cmd],
        )[0]
        _wait_for(  # well into the build: the simulator runs too
            "the simulator",
            lambda: any("raspberry_sim.server" in c for c in _children(build.pid).values()),
        )
        left = _children(build.pid)
        os.kill(build.pid, signal.SIGKILL)
        build.wait()
        time.sleep(3)
        assert not _alive(server), "the Prefect server outlived its build"
        assert not [p for p in left if _alive(p)], "a child of the build outlived it"
    finally:
        if build.poll() is None:
            build.kill()


def test_ctrl_c_stops_a_build_in_seconds_with_one_line(tmp_path, prefect_api):
    import os
    import signal
    import time

    import httpx

    build = _start_build(tmp_path, dict(os.environ), "c")
    store = BuildStore(tmp_path / "builds", "c")

    def past_questions() -> bool:  # reading is safe: every record is written whole
        return store.exists() and bool(store.manifest()["stages"].get("questions"))

    _wait_for("the questions stage", past_questions)
    left = _children(build.pid)
    started = time.monotonic()
    os.killpg(build.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    out, err = build.communicate(timeout=30)
    took = time.monotonic() - started
    assert build.returncode == 130, out[-2000:] + err[-2000:]
    assert took < 5, took
    tail = err[err.rfind("interrupted: ") :]
    assert tail.startswith("interrupted: build 'c' stopped") and tail.count("\n") == 1, err[-3000:]
    assert "Traceback" not in tail
    time.sleep(1)
    assert not [p for p in left if _alive(p)], "a child of the build outlived it"
    run = store.manifest()["runs"][-1]
    state = httpx.get(f"{prefect_api}/flow_runs/{run['flow_run_id']}").json()["state"]
    assert state["type"] == "CRASHED"
    proc = run_cli("status", "c", "--output-dir", str(tmp_path / "builds"))
    assert "run 1 (first run, interrupted)" in proc.stdout, proc.stdout
    proc = run_cli("rerun", "c", "--output-dir", str(tmp_path / "builds"), "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_status_names_a_shard_whose_file_changed(tmp_path):
    from conftest import stored_question

    out = tmp_path / "builds"
    store = BuildStore(out, "s")
    store.init({})
    q = stored_question()
    for shard in (0, 1):
        fp = store.write_shard("questions", shard, [q], type(q))
        entry = {"state": "done", "path": store.shard_path("questions", shard), "fingerprint": fp}
        store.record_shard("questions", shard, entry)
    proc = run_cli("status", "s", "--output-dir", str(out))
    assert "changed:" not in proc.stdout, proc.stdout
    (out / "s" / store.shard_path("questions", 1)).write_bytes(b"altered")
    proc = run_cli("status", "s", "--output-dir", str(out))
    assert "changed: questions/shard-00001: its file is gone or no longer matches" in proc.stdout
    assert "shard-00000: its file" not in proc.stdout
    proc = run_cli("status", "s", "--output-dir", str(out), "--json")
    assert json.loads(proc.stdout)["changed"] == ["questions/shard-00001"]


def test_status_shows_what_an_interrupted_build_paid(tmp_path, prefect_api):
    """The ledger is the truth: a build killed midway paid for requests no shard record holds,
    and for those in flight at the kill (booked before they were sent, at their most); `status`
    shows the ledger's figure, the same as `raspberry cache stats` for that build."""
    import os
    import sqlite3

    from conftest import kill_build_when

    from raspberry.llm.cost import money

    data = config_dict(tmp_path, per_task=4, shards=2)
    models = ("sim-teacher", "sim-user-standin", "sim-judge", "sim-rewriter")
    data["prices"] = {m: {"input_per_mtok": 3.0, "output_per_mtok": 15.0} for m in models}
    data["sim"] = {**data["sim"], "latency_ms": 200}  # time to be killed with answers awaited
    config = write_config(tmp_path, data)
    store = BuildStore(tmp_path / "builds", "k")

    def in_flight_in_dialogues() -> bool:
        """Dialogues under way, and requests booked as sent whose answers are not back."""
        if not (store.exists() and store.manifest()["stages"].get("dialogues")):
            return False
        with sqlite3.connect(data["gateway"]["cache_path"]) as db:
            return (
                db.execute("SELECT count(*) FROM in_flight WHERE sent_at IS NOT NULL").fetchone()[0]
                > 0
            )

    args = ["build", "--config", str(config), "--build-id", "k"]
    kill_build_when(args, dict(os.environ), in_flight_in_dialogues)
    stats = run_cli("cache", "stats", "--path", data["gateway"]["cache_path"], "--json")
    booked = json.loads(stats.stdout)["builds"]["k"]
    ledger = booked["cost_usd"]
    out = str(tmp_path / "builds")
    summary = json.loads(run_cli("status", "k", "--output-dir", out, "--json").stdout)
    recorded = sum(s["cost_usd"] for s in summary["stages"].values())
    assert ledger > 0 and summary["paid_usd"] == ledger and recorded <= ledger
    # Killed with dialogues in flight: those count, unconfirmed.
    assert 0 < summary["unconfirmed_usd"] == booked["unconfirmed_usd"] < ledger
    text = run_cli("status", "k", "--output-dir", out).stdout
    assert f"up to {money(summary['unconfirmed_usd'])} of it unconfirmed" in text, text
    assert f"paid: {money(ledger)} for this build over 1 run (the request ledger" in text, text
    # Issue 35: the killed run said "computed nothing" though its shards were written.
    assert "run 1 (first run, interrupted): computed candidates/shard-00000, " in text, text


def test_an_edited_question_file_is_computed_again_and_the_rerun_says_so(tmp_path, prefect_api):
    """Issue 35: the same build id after a line of its question file (and its answer) changed
    took every shard from the cache and kept the old question."""
    questions = tmp_path / "q.jsonl"
    rows = [{"question": "What is 17 + 25?", "answer": "42"}, {"question": "What is 3 * 7?",
            "answer": "21"}]  # fmt: skip
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = config_dict(tmp_path, shards=1)
    data["questions"] = {"shards": 1, "files": [{"path": str(questions), "answer_type": "numeric"}]}
    config = write_config(tmp_path, data)
    stages = ("--stages", "candidates,questions")
    proc, first = _build(config, "t", *stages)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed since the last run" not in proc.stdout

    rows[1] = {"question": "What is 6 * 9?", "answer": "54"}
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc, second = _build(config, "t", *stages)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"changed since the last run: {questions} was edited; it is read by candidates" in (
        proc.stdout
    )
    assert second["stages"]["candidates"]["shards_cached"] == 0
    kept = pq.read_table(shard_file(tmp_path / "builds", "t", "questions", 0)).to_pylist()
    assert {(q["prompt"], q["reference_answer"]) for q in kept} == {
        ("What is 17 + 25?", "42"), ("What is 6 * 9?", "54")}  # fmt: skip

    proc = run_cli("rerun", "t", "--output-dir", str(tmp_path / "builds"))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # nothing changed since: a rerun
    questions.write_text(questions.read_text().replace("54", "55"))
    proc = run_cli("rerun", "t", "--output-dir", str(tmp_path / "builds"))
    assert proc.returncode == 2 and f"{questions} was edited" in proc.stderr, proc.stderr


def test_a_benchmark_file_is_in_the_key_of_the_stage_that_reads_it(tmp_path, make_config):
    bench = tmp_path / "bench.json"
    shutil.copy(ROOT / "configs" / "simplebench_sample.json", bench)
    config = make_config(questions={"seed": 1, "shards": 1, "reasoning_gym": [
        {"task": "chain_sum", "count": 2}], "filters": {"decontamination": {
            "benchmarks": [str(bench)]}}})  # fmt: skip
    from raspberry.stages import registry

    before = {s: registry.stage(s).key(config) for s in registry.names()}
    bench.write_text(bench.read_text().replace("?", "?!", 1))
    after = {s: registry.stage(s).key(config) for s in registry.names()}
    assert [s for s in before if before[s] != after[s]] == ["candidates"]


def test_a_build_of_questions_the_simulator_cannot_solve_fails_and_says_why(tmp_path, prefect_api):
    """Issue 33: ten questions of the user's own made 0 SFT rows, exit 0, "completed"."""
    questions = tmp_path / "mine.jsonl"
    capitals = [("Canada", "Ottawa"), ("Australia", "Canberra"), ("Brazil", "Brasilia")]
    questions.write_text("".join(
        json.dumps({"question": f"What is the capital city of {c}?", "answer": a}) + "\n"
        for c, a in capitals))  # fmt: skip
    data = config_dict(tmp_path, shards=1)
    data["questions"] = {"shards": 1, "files": [{"path": str(questions)}]}
    data["dialogues"] = {"max_turns": 2}
    proc, summary = _build(write_config(tmp_path, data), "mine")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: build mine fell short: stage verdicts kept no rows of 3")
    assert "main reason: not solved (3 of 3)" in error
    assert "the simulated teacher could not solve them" in error and "Calculate" in error
    assert summary["shortfalls"] and summary["state"] == "completed"
