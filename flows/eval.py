"""The evaluation flow: each model answers a benchmark K times; accuracy with a 95% interval."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from raspberry_sim.process import sim_for
from raspberry_tasks.eval import eval_task

from raspberry.build_files.folder import Folder
from raspberry.build_files.records import EvalRow, from_table, schema
from raspberry.evaluate import compare
from raspberry.stages.config import load_config


def comparisons(results: list[dict[str, Any]], resamples: int) -> dict[str, Any]:
    """Every model after the first against the first (the base), paired on the questions."""
    rows = {
        r["model"]: from_table(Folder(posixpath.dirname(r["results"])).read_table(
            posixpath.basename(r["results"]), schema(EvalRow)), EvalRow)
        for r in results
    }  # fmt: skip
    base, *others = [r["model"] for r in results]
    return {f"{m} vs {base}": compare(rows[base], rows[m], resamples) for m in others}


@flow(name="evaluate_benchmark", flow_run_name="eval-{eval_id}")
def evaluate_benchmark(
    config_path: str,
    benchmark_path: str,
    models: list[str],
    runs: int,
    eval_id: str,
    output_dir: str,
) -> dict[str, Any]:
    """Writes <output_dir>/<eval_id>/<model>.parquet per model and summary.json."""
    config = load_config(config_path)
    out = Folder(output_dir).sub(eval_id)
    with sim_for(config.sim) as sim_url:
        futures = [
            eval_task.submit(eval_id, m, config_path, benchmark_path, runs, out.url(), sim_url)
            for m in models
        ]
        results = [f.result() for f in futures]
    summary = {
        "eval_id": eval_id,
        "benchmark": benchmark_path,
        "models": {r["model"]: r for r in results},
        "comparisons": comparisons(results, config.eval.bootstrap_resamples),
    }
    out.write_text("summary.json", json.dumps(summary, indent=2))
    create_table_artifact(
        key=re.sub(r"[^a-z0-9-]+", "-", f"eval-{eval_id}".lower()),
        table=[
            {
                k: r[k]
                for k in (
                    "model",
                    "model_ref",
                    "questions",
                    "runs",
                    "accuracy_per_run",
                    "mean",
                    "ci95",
                    "format",
                    "mean_tokens_out",
                )
            }
            for r in results
        ],
        description=f"Accuracy on {Path(benchmark_path).name}, {runs} runs, bootstrap 95% CI",
    )
    return summary
