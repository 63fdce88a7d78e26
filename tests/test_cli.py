"""Bad input through the real command: exit code 2, one line naming the problem, nothing written."""

import subprocess

import pytest
from conftest import config_dict, run_cli, write_config


def _assert_bad_input(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0]


def _build(tmp_path, data, *extra):
    return run_cli("build", "--config", str(write_config(tmp_path, data)), *extra)


def test_misspelt_key(tmp_path):
    data = config_dict(tmp_path)
    data["verdicts"] = {"judge_min_scor": 7}
    _assert_bad_input(_build(tmp_path, data), "verdicts.judge_min_scor", "build.yaml")
    assert not (tmp_path / "builds").exists()


def test_missing_prompt_file(tmp_path):
    data = config_dict(tmp_path)
    data["dialogues"]["teacher_prompt"] = "teacher_v9"
    _assert_bad_input(_build(tmp_path, data), "prompt file not found", "teacher_v9.md")
    assert not (tmp_path / "builds").exists()


def test_missing_api_key(tmp_path):
    data = config_dict(tmp_path)
    data["providers"]["claude"] = {"kind": "anthropic"}
    data["models"]["judge"] = {"provider": "claude", "model": "claude-haiku-4-5"}
    env = {k: v for k, v in __import__("os").environ.items() if k != "ANTHROPIC_API_KEY"}
    _assert_bad_input(
        run_cli("build", "--config", str(write_config(tmp_path, data)), env=env),
        "ANTHROPIC_API_KEY",
        "'claude'",
    )


def test_unknown_reasoning_gym_task(tmp_path):
    data = config_dict(tmp_path)
    data["questions"]["reasoning_gym"].append({"task": "no_such_task", "count": 3})
    _assert_bad_input(_build(tmp_path, data), "no_such_task", "questions.reasoning_gym.5")


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        ({"files": [{"path": "nope.jsonl"}]}, "question file not found"),
        (
            {"filters": {"near_duplicates": {"earlier_builds": ["last-night"]}}},
            "build 'last-night' has no question shards",
        ),
        (
            {"filters": {"decontamination": {"benchmarks": ["gone.json"]}}},
            "benchmark file not found",
        ),
    ],
)
def test_bad_question_sources_fail_before_anything_runs(tmp_path, questions, expected):
    data = config_dict(tmp_path)
    data["questions"].update(questions)
    _assert_bad_input(_build(tmp_path, data), expected)
    assert not (tmp_path / "builds").exists()  # nothing was started, nothing written


@pytest.mark.parametrize("stages", ["dialogs", "questions,sfft"])
def test_unknown_stage(tmp_path, stages):
    _assert_bad_input(_build(tmp_path, config_dict(tmp_path), "--stages", stages), "unknown stage")


def test_status_of_unknown_build(tmp_path):
    _assert_bad_input(run_cli("status", "nope", "--output-dir", str(tmp_path)), "no build 'nope'")


@pytest.mark.parametrize(
    "schedule, words",
    [
        ({"cron": "0 2 * *"}, ["schedule.cron", "5 fields"]),
        ({"timezone": "Mars/Olympus"}, ["schedule.timezone", "Mars/Olympus"]),
    ],
)
def test_bad_schedule(tmp_path, schedule, words):
    _assert_bad_input(_build(tmp_path, config_dict(tmp_path, schedule=schedule)), *words)


def _recorded_build(tmp_path, build_id: str = "b1") -> tuple[str, str]:
    """A build whose manifest records one run of the config (as `raspberry build` leaves it)."""
    from raspberry.build_files.store import BuildStore
    from raspberry.stages import registry
    from raspberry.stages.config import load_config

    config_path = write_config(tmp_path, config_dict(tmp_path))
    config, out = load_config(config_path), str(tmp_path / "builds")
    store = BuildStore(out, build_id)
    store.init(registry.stage_keys(config, registry.names()))
    run = {"config_path": str(config_path), "selected": registry.names(), "output_dir": out}
    store.record_run({**run, "started_at": 1.0, "state": "failed", "stages": {}})
    return str(config_path), out


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_rerun_refuses_a_changed_config(tmp_path):
    config_path, out = _recorded_build(tmp_path)
    records = _files(tmp_path / "builds" / "b1" / "records")
    data = config_dict(tmp_path)
    data["dialogues"]["max_turns"] = 6
    write_config(tmp_path, data)  # the same file, edited since the build ran
    proc = run_cli("rerun", "b1", "--output-dir", out)
    _assert_bad_input(proc, "changed since build 'b1'", "dialogues", "raspberry build")
    assert _files(tmp_path / "builds" / "b1" / "records") == records


def test_rerun_of_a_build_without_a_recorded_run(tmp_path):
    from raspberry.build_files.store import BuildStore

    BuildStore(tmp_path / "builds", "b2").init({})
    proc = run_cli("rerun", "b2", "--output-dir", str(tmp_path / "builds"))
    _assert_bad_input(proc, "no recorded run", "raspberry build")
    _assert_bad_input(run_cli("rerun", "nope", "--output-dir", str(tmp_path)), "no build 'nope'")


def test_alerts_need_the_webhook_in_the_environment_and_a_server(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL",)}
    env.pop("RASPBERRY_ALERT_WEBHOOK", None)
    _assert_bad_input(run_cli("alerts", env=env), "RASPBERRY_ALERT_WEBHOOK", "environment")
    env["RASPBERRY_ALERT_WEBHOOK"] = "https://hooks.example.com/x"
    _assert_bad_input(run_cli("alerts", env=env), "PREFECT_API_URL")


def test_every_command_says_what_it_does_with_an_example_and_every_flag_is_explained():
    import argparse
    import importlib.metadata

    from raspberry_app.cli import _parser

    parser = _parser()
    proc = run_cli("--version")
    assert proc.stdout.strip() == f"raspberry {importlib.metadata.version('raspberry')}"

    def commands(p: argparse.ArgumentParser, path: str):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from commands(child, f"{path} {name}")
        if path != "raspberry":
            yield path, p

    found = dict(commands(parser, "raspberry"))
    assert "raspberry push" in found and "raspberry sim serve" in found
    for path, command in found.items():
        assert command.description, path
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in command._actions)
        if leaf:
            assert command.epilog and "example:\n  " in command.epilog, path
            assert "raspberry " in command.epilog, path
        for action in command._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                assert action.help, (path, action.dest)
