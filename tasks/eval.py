"""Prefect task: one model answers every benchmark question K times."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task

from raspberry.benchmark_files import read_benchmark
from raspberry.build_files.folder import Folder
from raspberry.build_files.records import EvalRow, to_table
from raspberry.evaluate import evaluate, summarize
from raspberry.llm import Gateway
from raspberry.prompts import load_prompt
from raspberry.stages.config import load_config


@task(name="eval-model", task_run_name="{eval_id}-{model}")
def eval_task(
    eval_id: str,
    model: str,
    config_path: str,
    benchmark_path: str,
    runs: int,
    out_dir: str,
    sim_url: str | None,
) -> dict[str, Any]:
    config = load_config(config_path)
    items = read_benchmark(benchmark_path)
    system = load_prompt(config.prompts_path(), config.eval.prompt, set())

    async def ask_all() -> tuple[list[EvalRow], dict[str, Any]]:
        async with Gateway(config.llm, sim_url) as gw:
            rows = await evaluate(gw, model, items, runs, system)
            return rows, gw.stats.as_dict()

    rows, stats = asyncio.run(ask_all())
    folder = Folder(out_dir)
    folder.write_table(f"{model}.parquet", to_table(rows, EvalRow))
    return {
        "model": model,
        "model_ref": rows[0].model_ref,
        "results": folder.url(f"{model}.parquet"),
        **summarize(rows, config.eval.bootstrap_resamples),
        "requests_sent": stats["requests_sent"],
        "cache_hits": stats["cache_hits"],
    }
