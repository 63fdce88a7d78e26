"""How much a build gains from more Dask worker processes when its shards are CPU-bound.

A build of N code questions ("Write a Python function `f3(n)` that returns 7 times n."), whose
tests also burn about --cpu-s seconds of CPU in the sandbox, against the simulator at --latency-ms
per request, runs twice from empty caches: on a local Dask cluster of 1 worker process and of
--workers processes, each running one shard task at a time. Prints one JSON line: each run's
build wall time (the flow's own, without the Prefect server's start), the speedup, and this
machine's cores, which bound it: 3 workers cannot beat 1 by more than min(3, cores) when the
checks are what takes the time.

    .venv/bin/python benchmarks/scale_out.py [--questions 24] [--shards 6] [--workers 3]
        [--cpu-s 1.0] [--latency-ms 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from raspberry.build_files.store import BuildStore

ROOT = Path(__file__).resolve().parent.parent


def burn_loops(cpu_s: float) -> int:
    """How many loop steps of the tests' burner take cpu_s seconds of CPU here."""
    n, started = 2_000_000, time.process_time()
    sum(j * j for j in range(n))
    return int(n * cpu_s / (time.process_time() - started))


def write_build(folder: Path, args: argparse.Namespace) -> Path:
    loops = burn_loops(args.cpu_s)
    rows = []
    for i in range(args.questions):
        k = 3 + i % 7
        tests = f"assert f{i}(7) == {7 * k}\n_ = sum(j * j for j in range({loops}))"
        spec = {"kind": "code", "tests": tests, "limits": {"cpu_s": 30, "wall_s": 60}}
        rows.append(
            {
                "prompt": f"Write a Python function `f{i}(n)` that returns {k} times n.",
                "verification": json.dumps(spec),
            }
        )
    (folder / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "scale-out",
        "prompts_dir": str(ROOT / "prompts"),
        "sim": {"seed": 1, "latency_ms": args.latency_ms},
        "providers": {"sim": {"kind": "openai_compatible", "base_url": "sim"}},
        "models": {
            "teacher": {"provider": "sim", "model": "sim-teacher"},
            "user_standin": {"provider": "sim", "model": "sim-user-standin"},
            "judge": {"provider": "sim", "model": "sim-judge"},
            "rewriter": {"provider": "sim", "model": "sim-rewriter"},
        },
        "questions": {
            "shards": args.shards,
            "files": [
                {
                    "path": "code.jsonl",
                    "columns": {"prompt": "prompt", "verification": "verification"},
                }
            ],
        },
        "dialogues": {"max_turns": 3},
        "run": {"parallel_shards": 1},
    }
    path = folder / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(config: Path, folder: Path, workers: int) -> float:
    """The build's own wall time on a local cluster of `workers` processes, from empty caches."""
    data = yaml.safe_load(config.read_text())
    data["output_dir"] = str(folder / f"builds-{workers}")
    data["gateway"] = {"cache_path": str(folder / f"cache-{workers}.sqlite")}
    path = folder / f"build-{workers}.yaml"
    path.write_text(yaml.safe_dump(data))
    cli = [sys.executable, "-m", "raspberry_app.cli", "build", "--config", str(path)]
    cli += ["--build-id", "b", "--executor", "dask", "--workers", str(workers), "--json"]
    cli += ["--stages", "candidates,questions,dialogues,verdicts"]
    out = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    if out.returncode not in (0, 1):
        raise SystemExit(f"build on {workers} worker(s) failed:\n{out.stderr[-3000:]}")
    runs = BuildStore(folder / f"builds-{workers}", "b").manifest()["runs"]
    return float(runs[-1]["wall_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--shards", type=int, default=6)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--cpu-s", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_build(folder, args)
        one = run(config, folder, 1)
        many = run(config, folder, args.workers)
    print(
        json.dumps(
            {
                "questions": args.questions,
                "shards": args.shards,
                "cpu_s_per_check": args.cpu_s,
                "latency_ms": args.latency_ms,
                "wall_s_1_worker": one,
                f"wall_s_{args.workers}_workers": many,
                "speedup": round(one / many, 2),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
