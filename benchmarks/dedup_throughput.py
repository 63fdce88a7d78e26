"""Time and peak memory of the build-wide duplicate pass at 10k, 50k and 100k questions.

The questions are reasoning-gym items of 25 task types, a third of them passed off as free text
(source "files", with their reference answers, so the answer-aware pass of semantic.py runs on
them), plus one reworded copy (a word dropped) for every tenth question, written as candidate
shards of 10,000 rows. Each size runs in a fresh
process that reads the first shards. Before the pass, with every import done, the process's peak
RSS is reset (Linux: /proc/self/clear_refs), so the reported peak is the pass's own high-water
mark, beside the RSS the process had when it began.

With --embeddings the free-text third is also embedded, as with an `embedder` role, by the
simulated embedder's own function called in the process (no HTTP: the figure is the pass's, not
a provider's), so the vector index (questions/neighbours.py) is in the time and the memory.

    .venv/bin/python benchmarks/dedup_throughput.py [--sizes 10000,50000,100000] [--runs 3]
        [--embeddings]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARD = 10_000
TASKS = (
    "basic_arithmetic calendar_arithmetic chain_sum complex_arithmetic count_bits count_primes "
    "cryptarithm decimal_arithmetic dice family_relationships fraction_simplification gcd lcm "
    "leg_counting letter_counting number_filtering number_format number_sorting power_function "
    "simple_geometry syllogism time_intervals spell_backward word_sorting base_conversion"
).split()


def make_shards(folder: Path, total: int) -> list[str]:
    import reasoning_gym

    from raspberry.build_files.folder import Folder
    from raspberry.build_files.records import Question, to_table
    from raspberry.stages.candidates.config import ReasoningGymTask
    from raspberry.stages.candidates.reasoning_gym_source import to_question

    per_task = total // len(TASKS)
    rows = []
    for i, task in enumerate(TASKS):
        spec = ReasoningGymTask(task=task, count=per_task)
        ds = reasoning_gym.create_dataset(task, size=per_task, seed=100 + i)
        for j in range(per_task):
            q = to_question(spec, ds[j], "bench")
            if j % 3 == 0:  # a third as free text with its answer: the answer-aware pass runs
                q = q.model_copy(update={"source": "files"})
            rows.append(q)
            if j % 10 == 9:  # a reworded copy: one word dropped
                words = q.prompt.split()
                cut = words[: len(words) // 2] + words[len(words) // 2 + 1 :]
                rows.append(q.model_copy(update={"prompt": " ".join(cut)}))
    rows = rows[:total]
    paths = []
    for s in range(0, len(rows), SHARD):
        name = f"shard-{s // SHARD:05d}.parquet"
        Folder(folder).write_table(name, to_table(rows[s : s + SHARD], Question))
        paths.append(str(folder / name))
    return paths


def measure(paths: list[str], embeddings: bool) -> dict[str, float]:
    """Run in the child: the pass over these shards, its time and memory."""
    import numpy as np
    from raspberry_sim.embeddings import embed

    from raspberry.stages.candidates.config import QuestionsConfig
    from raspberry.stages.questions.duplicate_pass import duplicates

    def vectors(texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(embed(t), np.float32) for t in texts]

    cfg = QuestionsConfig(reasoning_gym=[{"task": "basic_arithmetic", "count": 1}])
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS, to the current
    start = time.perf_counter()
    found = duplicates(cfg, paths, [], vectors if embeddings else None)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "rss_before_mib": before / 1024,
        "rss_peak_mib": _status_kib("VmHWM") / 1024,
        "dropped": len(found),
    }


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (this benchmark needs Linux)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--embeddings", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child), args.embeddings)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = make_shards(Path(tmp), max(sizes))
        print(
            f"wrote {max(sizes)} questions in {len(paths)} shards ({time.perf_counter() - t:.0f} s)"
        )
        print(
            f"{'questions':>10} {'median s':>9} {'per 1k s':>9} {'RSS before':>11} "
            f"{'RSS peak':>9} {'growth':>8} {'dropped':>8}"
        )
        for size in sizes:
            chosen = [str(p) for p in paths[: -(-size // SHARD)]]
            runs = [
                json.loads(
                    subprocess.run(
                        [sys.executable, __file__, "--child", json.dumps(chosen)]
                        + (["--embeddings"] if args.embeddings else []),
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
            wall = statistics.median(r["wall_s"] for r in runs)
            before = statistics.median(r["rss_before_mib"] for r in runs)
            peak = statistics.median(r["rss_peak_mib"] for r in runs)
            print(
                f"{size:>10} {wall:>9.1f} {wall / size * 1000:>9.2f} {before:>9.0f} MiB "
                f"{peak:>5.0f} MiB {peak - before:>4.0f} MiB {runs[0]['dropped']:>8}"
            )


if __name__ == "__main__":
    main()
