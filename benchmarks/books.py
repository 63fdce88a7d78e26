"""The gateway's books against the simulator run as an outside server that counts what it answers.

Three runs of one small build, each from an empty request cache, through the `raspberry` command:

- clean: the build alone; what the server answered is what one build needs.
- killed: the build SIGKILLed with dialogue requests in flight, then `raspberry rerun`; the
  server's answers against the ledger's lines for the build (confirmed and unconfirmed): every
  answer paid must be booked (unbooked = answered - booked, goal 0 or less).
- two builds: two build ids started together on one request cache; what the server answered
  against the clean build's (goal: at most 1.05 times).

    .venv/bin/python benchmarks/books.py [--per-task 10] [--latency-ms 100] [--state-url URL]

Prints one JSON line per run and a last line of the figures.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from sqlalchemy import select

from raspberry.llm.state import LEDGER, engine_for

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "raspberry_app.cli"]
MODELS = ("sim-teacher", "sim-user-standin", "sim-judge", "sim-rewriter")
TASKS = ("basic_arithmetic", "chain_sum", "letter_counting", "word_sorting", "simple_equations")


def write_config(folder: Path, url: str, args: argparse.Namespace, name: str) -> Path:
    config = {
        "name": "books",
        "output_dir": str(folder / "builds"),
        "prompts_dir": str(ROOT / "prompts"),
        "providers": {"outside": {"kind": "openai_compatible", "base_url": url}},
        "models": {
            "teacher": {"provider": "outside", "model": "sim-teacher", "temperature": 0.7},
            "user_standin": {"provider": "outside", "model": "sim-user-standin"},
            "judge": {"provider": "outside", "model": "sim-judge"},
            "rewriter": {"provider": "outside", "model": "sim-rewriter"},
        },
        "gateway": {"cache_path": str(folder / f"{name}.sqlite"), "max_concurrency": 4},
        "questions": {
            "seed": 1,
            "shards": 2,
            "reasoning_gym": [{"task": t, "count": args.per_task} for t in TASKS],
        },
        "dialogues": {"samples_per_question": 1, "max_turns": 4},
        "prices": {m: {"input_per_mtok": 3.0, "output_per_mtok": 15.0} for m in MODELS},
    }
    if args.state_url:
        config["gateway"]["state_url"] = args.state_url
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def answered(url: str, model: str = "") -> int:
    stats = httpx.get(f"{url}/_sim/stats").json()
    return int(stats.get(f"model:{model}" if model else "requests", 0))


def booked(state: str, build_id: str) -> tuple[int, int]:
    """The ledger's lines for a build, and how many of them are unconfirmed."""
    with engine_for(state).connect() as conn:
        marks = conn.execute(
            select(LEDGER.c.unconfirmed).where(LEDGER.c.build_id == build_id)
        ).scalars()
        marks = list(marks)
    return len(marks), sum(1 for m in marks if m)


def build(config: Path, build_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "build", "--config", str(config), "--build-id", build_id],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finished(proc: subprocess.Popen[bytes], what: str) -> None:
    if proc.wait() not in (0, 1):  # 1: the build fell short, as small builds may
        raise SystemExit(f"{what} failed (exit {proc.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-task", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--kill-after", type=int, default=10,
                        help="user stand-in answers before the kill")  # fmt: skip
    parser.add_argument("--state-url", help="a PostgreSQL state (each run clears nothing: "
                        "give a new database)")  # fmt: skip
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sim = SimConfig(latency_ms=args.latency_ms, seed=8)

        with running_sim(sim) as url:
            finished(build(write_config(folder, url, args, "clean"), "clean"), "the clean build")
            one = answered(url)
        print(json.dumps({"run": "clean", "answered": one}), flush=True)

        with running_sim(sim) as url:
            config = write_config(folder, url, args, "killed")
            proc = build(config, "killed")
            while answered(url, "sim-user-standin") < args.kill_after:
                if proc.poll() is not None:
                    raise SystemExit("the build ended before the kill point")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(0.5)  # what was in flight reaches the server
            at_kill = answered(url)
            rerun = subprocess.run(
                [*CLI, "rerun", "killed", "--output-dir", str(folder / "builds")],
                cwd=ROOT,
                capture_output=True,
            )
            if rerun.returncode not in (0, 1):
                raise SystemExit(f"the rerun failed:\n{rerun.stderr.decode()[-2000:]}")
            total = answered(url)
            state = args.state_url or str(folder / "killed.sqlite")
            lines, unconfirmed = booked(state, "killed")
        killed = {
            "run": "killed",
            "answered_before_kill": at_kill,
            "answered": total,
            "booked": lines,
            "of_which_unconfirmed": unconfirmed,
            "unbooked": total - lines,
            "bought_again": total - one,
        }
        print(json.dumps(killed), flush=True)

        with running_sim(sim) as url:
            config = write_config(folder, url, args, "shared")
            both = [build(config, "first"), build(config, "second")]
            for proc in both:
                finished(proc, "a build on the shared cache")
            two = answered(url)
        print(json.dumps({"run": "two builds", "answered": two}), flush=True)
        figures = {
            "unbooked_after_kill": killed["unbooked"],
            "two_builds_over_one": round(two / one, 3),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
