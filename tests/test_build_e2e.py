"""One build end to end through Prefect, as a user runs it: the CLI in a subprocess.

The CLI talks to the session's Prefect test server (PREFECT_API_URL), so no run pays for an
ephemeral server start. Covers: a full build, exports traced to questions, a rerun that sends no
request, an altered output recomputed alone, and a failed shard named and then repaired.
"""

import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, config_dict, run_cli, shard_file, write_config

from raspberry.build_files.store import BuildStore
from raspberry.llm.cost import money

PRICED = ("sim-teacher", "sim-user-standin", "sim-judge", "sim-rewriter")


def _build(config_path, *extra) -> tuple[int, dict, str]:
    proc = run_cli("build", "--config", str(config_path), "--build-id", "e2e", "--json", *extra)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stdout + proc.stderr


def _dialogue_of(out, sft_id: str) -> str:
    rows = [
        r for s in range(2) for r in pq.read_table(shard_file(out, "e2e", "sft", s)).to_pylist()
    ]
    return next(r["dialogue_id"] for r in rows if r["id"] == sft_id)


def _shared_run(a: str, b: str, n: int) -> bool:
    def runs(text):
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    return bool(runs(a) & runs(b))


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_build_end_to_end(tmp_path, prefect_api):
    data = config_dict(tmp_path, per_task=8, shards=2)
    data["prices"] = {m: {"input_per_mtok": 3.0, "output_per_mtok": 15.0} for m in PRICED}
    config_path = write_config(tmp_path, data)
    out = tmp_path / "builds"

    code, summary, log = _build(config_path)
    assert code == 0, log
    assert summary["build_id"] == "e2e" and summary["state"] == "completed"
    stages = summary["stages"]
    assert stages["questions"]["rows_out"] == 40
    assert stages["dialogues"]["rows_out"] == 40
    assert 35 <= stages["verdicts"]["rows_out"] <= 40
    assert stages["sft"]["rows_out"] == stages["verdicts"]["rows_out"]
    assert stages["dialogues"]["requests_sent"] > 40 and stages["verdicts"]["requests_sent"] > 0
    assert stages["dialogues"]["tokens_out"] > 0
    assert "funnel: candidates 40 → questions 40 → dialogues 40" in log
    # Each stage left a progress artifact in the UI, at 100% when it ended.
    progress = {a.key: a for a in _latest_artifacts() if a.key.startswith("progress-e2e-")}
    assert set(progress) == {
        f"progress-e2e-{s}" for s in ("candidates", "questions", "dialogues", "verdicts", "sft")
    }
    assert progress["progress-e2e-dialogues"].data == 100.0
    assert "40/40 rows" in progress["progress-e2e-dialogues"].description

    # One self-contained HTML report: its plots drawn inline, nothing fetched from elsewhere.
    page = ((Path(out) / "e2e") / "report.html").read_text()
    assert page.count("<svg") == 6  # funnel, turns to correct, 3 length histograms, cost
    assert not re.search(r"<script|<link|<img|src=|@import|url\(", page)
    solved = summary["stages"]["dialogues"]["report"]["solved_at_turn"]
    for turn, count in solved.items():
        assert re.search(rf">solved at turn {turn}</text>.*?>{count}</text>", page, re.S)
    assert "question length (characters), n = 40" in page
    # What the build paid over its runs, and one first-try and one self-corrected row with the
    # dialogue it came from; the same report is a Markdown artifact in the Prefect UI.
    ledger = json.loads(run_cli("cache", "stats", "--path", data["gateway"]["cache_path"],
                                "--json").stdout)["builds"]["e2e"]["cost_usd"]  # fmt: skip
    assert summary["paid_usd"] == pytest.approx(ledger) and ledger > 0
    assert f"over 1 run(s), interrupted ones included: {money(ledger)}" in page
    assert "<h3>Solved at the first try</h3>" in page and "<h3>Self-corrected</h3>" in page
    assert page.count("<details><summary>the dialogue it came from") == 2
    report = next(a for a in _latest_artifacts() if a.key == "report-e2e")
    assert report.type == "markdown" and "## Sample rows" in report.data
    assert "### Self-corrected" in report.data and "**Turns to correct**" not in report.data
    assert "## Turns to correct" in report.data and "solved at turn 1" in report.data

    # Every exported row traces back to a question of this build; line i is row i everywhere.
    questions = {
        r["id"]: r
        for s in range(2)
        for r in pq.read_table(shard_file(out, "e2e", "questions", s)).to_pylist()
    }
    pr = _jsonl((Path(out) / "e2e") / "exports" / "prompt_response.jsonl")
    chat = _jsonl((Path(out) / "e2e") / "exports" / "openai_chat.jsonl")
    assert len(pr) == len(chat) == stages["sft"]["rows_out"]
    for row, msgs in zip(pr, chat, strict=True):
        assert row["prompt"] == questions[row["question_id"]]["prompt"]
        assert msgs["messages"] == [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["response"]},
        ]

    # Independently of the pipeline's own checks: no rewritten monologue repeats a nudge, not even
    # a 6-word run of one (the pipeline's check uses 8).
    dialogues = {
        r["id"]: r
        for s in range(2)
        for r in pq.read_table(shard_file(out, "e2e", "dialogues", s)).to_pylist()
    }
    rewritten = [r for r in pr if len(dialogues[_dialogue_of(out, r["id"])]["turns"]) > 2]
    assert rewritten
    for row in rewritten:
        turns = dialogues[_dialogue_of(out, row["id"])]["turns"]
        for nudge in (t["content"] for t in turns[2:] if t["role"] == "user"):
            assert not _shared_run(nudge, row["response"], 6), (nudge, row["response"])
        assert not re.search(r"\b(the user|your feedback|you said)\b", row["response"], re.I)
    report = json.loads(((Path(out) / "e2e") / "exports" / "export_report.json").read_text())
    assert report["openai_chat_checks"]["ok"] and report["openai_chat_checks"]["examples"] == len(
        pr
    )

    # The files load with `datasets`, offline.
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    exports = (Path(out) / "e2e") / "exports"
    loaded = datasets.load_dataset(
        "parquet",
        cache_dir=str(tmp_path / "hf"),
        data_files={s: str(exports / "parquet" / f"{s}.parquet") for s in ("train", "validation")},
    )
    assert loaded["train"].num_rows + loaded["validation"].num_rows == len(pr)
    chat = datasets.load_dataset(
        "json",
        data_files=str(exports / "openai_chat.jsonl"),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert chat.num_rows == len(pr)

    # Re-export one format elsewhere, from the shards alone.
    again_dir = tmp_path / "again"
    proc = run_cli(
        "export", "e2e", "--format", "sharegpt", "--out", str(again_dir), "--output-dir", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert (again_dir / "sharegpt.jsonl").read_text() == (
        (Path(out) / "e2e") / "exports" / "sharegpt.jsonl"
    ).read_text()

    # The same build id again: nothing is sent to any model.
    code, again, log = _build(config_path)
    assert code == 0, log
    assert all(s["requests_sent"] == 0 for s in again["stages"].values())
    assert all(s["shards_cached"] == 2 for s in again["stages"].values())
    assert again["stages"]["sft"]["rows_out"] == stages["sft"]["rows_out"]

    # A deleted output is not trusted from the cache: that shard alone is recomputed, and its
    # requests come from the durable request cache.
    shard_file(out, "e2e", "dialogues", 1).unlink()
    code, repaired, log = _build(config_path)
    assert code == 0, log
    assert repaired["stages"]["dialogues"]["shards_cached"] == 1
    assert repaired["stages"]["dialogues"]["requests_sent"] == 0
    assert repaired["stages"]["dialogues"]["cache_hits"] > 0
    assert repaired["stages"]["verdicts"]["shards_cached"] == 2  # identical output, same inputs

    # A corrupt input makes its downstream shard fail: exit 1, the manifest names the shard.
    shard_file(out, "e2e", "questions", 0).write_bytes(b"garbage")
    code, failed, log = _build(config_path, "--stages", "dialogues")
    assert code == 1, log
    assert failed["state"] == "failed"
    error = BuildStore(out, "e2e").manifest()["stages"]["dialogues"]["shard-00000"]["error"]
    assert "questions/shard-00000" in error
    assert "failed: dialogues/shard-00000" in log

    # A full rerun repairs it: the questions shard is rewritten, the rest comes from caches.
    code, fixed, log = _build(config_path)
    assert code == 0, log
    assert fixed["stages"]["questions"]["shards_cached"] == 1
    assert all(s["requests_sent"] == 0 for s in fixed["stages"].values())
    assert fixed["stages"]["sft"]["rows_out"] == stages["sft"]["rows_out"]


def _latest_artifacts() -> list:
    import asyncio

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    return asyncio.run(read())


def test_budget_stops_the_build_and_a_rerun_with_more_continues(tmp_path, prefect_api):
    # At $2,000 per million tokens a teacher request may cost up to ~$2.2 (1,000 tokens out).
    prices = {"sim-teacher": {"input_per_mtok": 2_000, "output_per_mtok": 2_000}}
    data = config_dict(tmp_path, per_task=2, shards=1, prices=prices, budget={"max_usd": 6.0})
    data["models"]["teacher"]["max_tokens"] = 1000
    code, summary, log = _build(write_config(tmp_path, data))
    assert code == 1, log
    assert "budget reached" in log and "rerun the same build id" in log
    assert summary["stages"]["dialogues"]["shards_failed"] == 1
    proc = run_cli("cache", "stats", "--config", str(tmp_path / "build.yaml"), "--json")
    ledger = json.loads(proc.stdout)["builds"].get("e2e", {})
    assert ledger, (proc.stdout, log)
    paid = ledger["responses_paid"]
    assert paid > 0 and ledger["cost_usd"] <= 6.0  # in-flight requests never overspend

    data["budget"] = {"max_usd": 10_000.0}
    code, summary, log = _build(write_config(tmp_path, data))
    assert code == 0, log
    # Nothing paid for in the first run is paid for again.
    assert summary["stages"]["dialogues"]["cache_hits"] >= paid


def test_eval_end_to_end(tmp_path, prefect_api):
    config = write_config(tmp_path, config_dict(tmp_path))
    sample = ROOT / "configs" / "simplebench_sample.json"
    proc = run_cli(
        "eval",
        "--config",
        str(config),
        "--benchmark",
        str(sample),
        "--runs",
        "2",
        "--eval-id",
        "E2E-eval",
        "--output-dir",
        str(tmp_path / "ev"),
        "--json",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    result = summary["models"]["teacher"]
    assert result["questions"] == 12 and result["runs"] == 2
    assert result["ci95"][0] <= result["mean"] <= result["ci95"][1]
    assert "teacher" in proc.stdout and "95% CI" in proc.stdout
    rows = pq.read_table(tmp_path / "ev" / "E2E-eval" / "teacher.parquet").to_pylist()
    assert len(rows) == 24 and {r["run"] for r in rows} == {0, 1}

    assert "eval-e2e-eval" in {a.key for a in _latest_artifacts()}


def test_a_moved_build_keeps_its_shards(tmp_path, prefect_api):
    """Shard paths are recorded relative to the build folder: after the folder moves, a later
    stage still finds and trusts the shards written before the move."""
    config = write_config(tmp_path, config_dict(tmp_path, per_task=2))

    def build(output_dir, stages):
        return run_cli(
            "build",
            "--config",
            str(config),
            "--build-id",
            "moved",
            "--output-dir",
            str(output_dir),
            "--stages",
            stages,
        )

    assert build(tmp_path / "before", "candidates,questions").returncode == 0
    (tmp_path / "before").rename(tmp_path / "after")
    proc = build(tmp_path / "after", "dialogues")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dialogues   2 ok/0 ✗" in proc.stdout, proc.stdout + proc.stderr
