"""Does the difficulty band measure what it claims? A build's questions stage against the
simulated student, whose chance of answering each question right is known: the simulator draws
it once per question from its seed and the question's text (sim/roles.py), so the
truth is 1 - that draw on the tasks the simulated teacher can solve.

    .venv/bin/python benchmarks/difficulty.py [--per-task 60] [--samples 4] [--max-pass 0.75]

Builds the candidates and questions stages through the `raspberry` command and prints one JSON
line: per task, the mean pass rate measured over `samples` tries against the mean truth (goal:
within 0.1), and whether the kept rows are exactly those whose measured rate lies in the band.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from raspberry_sim.roles import rng_for

from raspberry.build_files.records import Question
from raspberry.build_files.store import BuildStore

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("basic_arithmetic", "chain_sum", "simple_equations")
SEED = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-task", type=int, default=60)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-pass", type=float, default=0.75)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = {
            "name": "difficulty",
            "output_dir": str(folder / "builds"),
            "prompts_dir": str(ROOT / "prompts"),
            "sim": {"seed": SEED},
            "providers": {"sim": {"kind": "openai_compatible", "base_url": "sim"}},
            "models": {
                role: {"provider": "sim", "model": f"sim-{role.replace('_', '-')}"}
                for role in ("teacher", "user_standin", "judge", "rewriter", "student")
            },
            "gateway": {"cache_path": str(folder / "cache.sqlite")},
            "questions": {
                "seed": 1,
                "shards": 2,
                "reasoning_gym": [{"task": t, "count": args.per_task} for t in TASKS],
                "difficulty": {"samples": args.samples, "max_pass_rate": args.max_pass},
            },
        }
        path = folder / "build.yaml"
        path.write_text(yaml.safe_dump(config))
        cli = [sys.executable, "-m", "raspberry_app.cli", "build", "--config", str(path)]
        cli += ["--build-id", "d", "--stages", "candidates,questions"]
        done = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
        if done.returncode not in (0, 1):
            raise SystemExit(f"the build failed:\n{done.stderr[-3000:]}")
        store = BuildStore(folder / "builds", "d")
        rows = [q for s in range(2) for q in store.read_shard("questions", s, Question)]
    measured = [q for q in rows if q.pass_rate is not None]
    tasks = {}
    for task in TASKS:
        mine = [q for q in measured if q.task == task]
        truth = [1 - rng_for(SEED, "student", q.prompt).random() for q in mine]
        rate = sum(q.pass_rate for q in mine) / len(mine)  # type: ignore[misc]
        tasks[task] = {
            "questions": len(mine),
            "measured_mean": round(rate, 3),
            "true_mean": round(sum(truth) / len(truth), 3),
            "error": round(abs(rate - sum(truth) / len(truth)), 3),
        }
    in_band = [q for q in measured if q.pass_rate <= args.max_pass]  # type: ignore[operator]
    print(
        json.dumps(
            {
                "samples": args.samples,
                "tasks": tasks,
                "max_error": max(t["error"] for t in tasks.values()),
                "kept": sum(q.kept for q in rows),
                "dropped_too_easy": sum(q.drop_reason == "too_easy" for q in rows),
                "kept_is_the_band": {q.id for q in rows if q.kept} == {q.id for q in in_band},
            }
        )
    )


if __name__ == "__main__":
    main()
