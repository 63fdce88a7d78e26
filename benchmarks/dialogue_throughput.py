"""Dialogue throughput against the simulated server: wall time versus the ideal.

    python benchmarks/dialogue_throughput.py [--n 1000] [--latency-ms 2000] [--concurrency 200]

Runs N dialogues (one sample each) through the real gateway and SDKs against `raspberry sim`
with a fixed latency, each run with a fresh request cache, and prints one JSON line per run and
a last line with medians. ideal_s = max(calls x latency / concurrency, longest dialogue's calls x
latency); ratio = wall_s / ideal_s. cpu_ms_per_call is this (client) process's CPU time per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai  # noqa: F401  the gateway imports its SDK on first use: start-up, not throughput
import reasoning_gym

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raspberry_sim.config import SimConfig  # noqa: E402
from raspberry_sim.process import running_sim  # noqa: E402

from raspberry.build_files.records import Question  # noqa: E402
from raspberry.llm import Gateway  # noqa: E402
from raspberry.stages.candidates.config import ReasoningGymTask  # noqa: E402
from raspberry.stages.candidates.reasoning_gym_source import to_question  # noqa: E402
from raspberry.stages.config import BuildConfig  # noqa: E402
from raspberry.stages.dialogues.loop import run_dialogues  # noqa: E402
from raspberry.stages.dialogues.stage import dialogue_prompts  # noqa: E402

TASKS = ("chain_sum", "letter_counting", "word_sorting", "simple_equations")


def questions(n: int) -> list[Question]:
    tasks = [TASKS[i % len(TASKS)] for i in range(n)]
    return [
        to_question(ReasoningGymTask(task=task, count=tasks.count(task)), entry, "bench")
        for i, task in enumerate(TASKS)
        for entry in reasoning_gym.create_dataset(task, size=tasks.count(task), seed=100 + i)
    ]


def config(cache: Path, concurrency: int) -> BuildConfig:
    return BuildConfig.model_validate(
        {
            "name": "bench",
            "source": str(ROOT / "configs" / "bench.yaml"),
            "prompts_dir": str(ROOT / "prompts"),
            "sim": {},
            "providers": {"sim": {"kind": "openai_compatible", "base_url": "sim"}},
            "models": {
                role: {"provider": "sim", "model": model}
                for role, model in (
                    ("teacher", "sim-teacher"),
                    ("user_standin", "sim-user-standin"),
                    ("judge", "sim-judge"),
                    ("rewriter", "sim-rewriter"),
                )
            },
            "gateway": {"max_concurrency": concurrency, "cache_path": str(cache)},
            "questions": {"reasoning_gym": [{"task": "chain_sum", "count": 1}]},
        }
    )


async def one_run(cfg: BuildConfig, url: str, qs: list[Question], latency_s: float) -> dict:
    async with Gateway(cfg.llm, url) as gw:
        cpu, wall = time.process_time(), time.perf_counter()
        rows = await run_dialogues(gw, qs, cfg.dialogues, dialogue_prompts(cfg), "bench")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        calls = gw.stats.requests_sent
    longest = max(2 * d.attempts - 1 for d in rows)  # teacher turns plus the nudges between them
    ideal = max(calls * latency_s / cfg.gateway.max_concurrency, longest * latency_s)
    return {
        "dialogues": len(rows),
        "calls": calls,
        "calls_per_dialogue": round(calls / len(rows), 3),
        "longest_dialogue_calls": longest,
        "wall_s": round(wall, 2),
        "ideal_s": round(ideal, 2),
        "ratio": round(wall / ideal, 3),
        "cpu_ms_per_call": round(1000 * cpu / calls, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--wrong-first-prob", type=float, default=0.7)
    parser.add_argument("--wrong-retry-prob", type=float, default=0.25)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sim = SimConfig(
        latency_ms=args.latency_ms,
        wrong_first_prob=args.wrong_first_prob,
        wrong_retry_prob=args.wrong_retry_prob,
        seed=1,
    )
    qs = questions(args.n)
    results = []
    with running_sim(sim) as url, tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            cfg = config(Path(tmp) / f"cache-{run}.sqlite", args.concurrency)
            result = asyncio.run(one_run(cfg, url, qs, args.latency_ms / 1000))
            print(json.dumps({"run": run, **result}), flush=True)
            results.append(result)
    medians = {
        k: statistics.median(r[k] for r in results)
        for k in ("wall_s", "ideal_s", "ratio", "cpu_ms_per_call", "calls_per_dialogue")
    }
    print(json.dumps({"median_of_runs": args.runs, **medians}))


if __name__ == "__main__":
    main()
