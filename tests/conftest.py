"""Shared fixtures. Prefect settings are fixed before anything imports Prefect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

_PREFECT_HOME = tempfile.mkdtemp(prefix="raspberry-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(Path(_PREFECT_HOME) / "results")
for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):  # no test may reach a real provider
    os.environ.pop(key, None)

from raspberry_sim.config import SimConfig  # noqa: E402
from raspberry_sim.process import running_sim  # noqa: E402

from raspberry.build_files.records import Lineage, Question  # noqa: E402
from raspberry.build_files.store import BuildStore  # noqa: E402
from raspberry.stages.candidates.config import ReasoningGymTask  # noqa: E402
from raspberry.stages.candidates.reasoning_gym_source import to_question  # noqa: E402
from raspberry.stages.config import BuildConfig, load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIM_MODELS = ("sim-teacher", "sim-user-standin", "sim-judge", "sim-rewriter",
              "sim-question-writer", "sim-embed", "sim-second-judge", "sim-student")  # fmt: skip
FAMILIES = ["basic_arithmetic", "chain_sum", "letter_counting", "word_sorting", "simple_equations"]


def config_dict(tmp_path: Path, per_task: int = 6, shards: int = 2, **overrides: Any) -> dict:
    """A small offline build config; overrides replace top-level sections."""
    data: dict[str, Any] = {
        "name": "test",
        "output_dir": str(tmp_path / "builds"),
        "prompts_dir": str(ROOT / "prompts"),
        "sim": {"seed": 3, "wrong_first_prob": 0.4},
        "providers": {
            "sim_openai": {"kind": "openai_compatible", "base_url": "sim"},
            "sim_anthropic": {"kind": "anthropic", "base_url": "sim"},
        },
        "models": {
            "teacher": {"provider": "sim_openai", "model": "sim-teacher", "temperature": 0.7},
            "user_standin": {"provider": "sim_openai", "model": "sim-user-standin"},
            "judge": {"provider": "sim_anthropic", "model": "sim-judge", "temperature": 0.0},
            "rewriter": {"provider": "sim_anthropic", "model": "sim-rewriter"},
        },
        "gateway": {
            "cache_path": str(tmp_path / "cache.sqlite"),
            # A retry window of a few seconds: a loaded CI machine may stall briefly.
            "max_retries": 5,
            "backoff_base_s": 0.1,
            "backoff_max_s": 1.0,
        },
        "questions": {
            "seed": 1,
            "shards": shards,
            "reasoning_gym": [{"task": t, "count": per_task} for t in FAMILIES],
        },
        "dialogues": {"samples_per_question": 1, "max_turns": 4},
        # Free: tests that point these models at a simulator by its URL (not "sim") need a
        # price for each, as every paid model does (a test of costs gives its own prices).
        "prices": {m: 0 for m in SIM_MODELS},
    }
    data.update(overrides)
    return data


def external_sim_dict(
    tmp_path: Path, url: str, per_task: int, cache: str, max_concurrency: int, key_env: str
) -> dict:
    """config_dict against a simulator the test runs itself (its URL, not "sim"), so that the
    simulator's request counter spans every build of the test; the Anthropic-style provider
    reads its key from `key_env`."""
    data = config_dict(tmp_path, per_task=per_task, shards=2)
    del data["sim"]
    data["providers"] = {
        "local": {"kind": "openai_compatible", "base_url": url},
        "local_anthropic": {"kind": "anthropic", "base_url": url, "api_key_env": key_env},
    }
    data["models"] = {
        "teacher": {"provider": "local", "model": "sim-teacher", "temperature": 0.7},
        "user_standin": {"provider": "local", "model": "sim-user-standin"},
        "judge": {"provider": "local_anthropic", "model": "sim-judge"},
        "rewriter": {"provider": "local_anthropic", "model": "sim-rewriter"},
    }
    data["gateway"] = {"cache_path": str(tmp_path / cache), "max_concurrency": max_concurrency}
    return data


def shard_file(output_dir: str | Path, build_id: str, stage: str, shard: int) -> Path:
    """A shard's file of a build on the local disk."""
    return Path(output_dir) / build_id / BuildStore.shard_path(stage, shard)


def stored_question() -> Question:
    """One question row as the questions stage stores it, for tests that build a manifest."""
    return Question(
        id="q0",
        source="files",
        task="t",
        prompt="What is 2 + 2?",
        reference_answer="4",
        verification='{"kind": "exact", "reference": "4"}',
        lineage=Lineage(question_id="q0", stage="questions", config_hash="h"),
    )


def run_stage(name: str, config: BuildConfig, sim_url: str | None, *inputs: Any, shard: int = 0,
              build_id: str | None = None) -> tuple[list, dict]:  # fmt: skip
    """One shard of a registered stage, computed as its task computes it (without Prefect)."""
    import asyncio

    from raspberry.stages import registry
    from raspberry.stages.spec import ShardContext

    spec = registry.stage(name)
    ctx = ShardContext(config, sim_url, build_id, shard, spec.key(config))
    return asyncio.run(spec.run(ctx, *inputs))


def rg_questions(task: str, n: int, seed: int = 9) -> list[Question]:
    """Question rows for n items of a reasoning-gym task, as the questions stage makes them."""
    import reasoning_gym

    return [
        to_question(ReasoningGymTask(task=task, count=n), e, "h")
        for e in reasoning_gym.create_dataset(task, size=n, seed=seed)
    ]


CLI = [sys.executable, "-m", "raspberry_app.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """The `raspberry` command in a subprocess, as a user runs it."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def kill_build_when(args: list[str], env: dict[str, str], ready: Callable[[], bool]) -> None:
    """Run `raspberry <args>` and SIGKILL it once ready() holds (it must still be running then);
    then give the requests it had in flight half a second to reach the server."""
    proc = subprocess.Popen(
        [*CLI, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not ready():
        assert proc.poll() is None, "the build ended before the kill point"
        assert time.time() < deadline, "the kill point was not reached in 5 minutes"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)


def write_config(tmp_path: Path, data: dict, name: str = "build.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def make_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(**overrides: Any) -> BuildConfig:
        return load_config(write_config(tmp_path, config_dict(tmp_path, **overrides)))

    return make


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    with running_sim(SimConfig(seed=3, wrong_first_prob=0.4)) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of the test session's own (tests/pg_server.py)."""
    from pg_server import bin_dir, running_postgres

    if bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (make test installs it through apt-get)")
        pytest.skip("SKIPPED LOUDLY: PostgreSQL is not installed; `make test` installs it as root")
    with running_postgres() as server:
        yield server.url


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect server for the session, also offered to CLI subprocesses via the env."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


def source_rows(source, questions, shard: int, folder=ROOT) -> tuple[list, list[str]]:
    """One shard of one question source (its `Source`), as the candidates stage runs it: its
    rows and the malformed input rows it reported."""
    import asyncio

    from raspberry.stages.candidates.sources import SourceContext

    ctx = SourceContext(questions, Path(folder), "h", shard, name=source.name)
    return asyncio.run(source.generate(ctx)), ctx.malformed


def run_python(code: str, limits: Any = None) -> Any:
    """`code` run as a script in the verifier's sandbox (one of the two processes a code check
    starts), for tests that look at what a script inside can see and do."""
    from contextlib import ExitStack

    from raspberry.verify.sandbox import Limits, SandboxUnavailable, _Run, _unavailable

    limits = limits or Limits()
    with ExitStack() as stack:
        try:
            run = _Run(stack, "run", code, limits)
        except SandboxUnavailable as exc:
            return _unavailable(exc)
        run.wait(limits.wall_s)
        run.kill()
        return run.result(limits)
