"""Measure a model on a benchmark: K runs, accuracy per run, mean, bootstrap 95% interval.

Run k asks every question with sample index k, so runs are distinct samples (and each is cached,
so re-running an evaluation costs nothing). The interval resamples questions: it says how much
the mean would move on another draw of questions like these.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from typing import Any

from raspberry.benchmark_files import BenchmarkItem
from raspberry.llm import Gateway
from raspberry.prompts import Prompt
from raspberry.records import EvalRow
from raspberry.verify import acheck


async def _ask(gw: Gateway, model: str, item: BenchmarkItem, run: int, system: Prompt) -> EvalRow:
    reply = await gw.chat(
        model,
        [{"role": "user", "content": item.prompt}],
        system=system.text,
        prompt_ref=system.ref,
        sample_index=run,
    )
    result = await acheck(item.verification, reply.text)
    return EvalRow(
        run=run,
        model=model,
        model_ref=gw.model_ref(model),
        question_id=item.id,
        reference=item.answer,
        response=reply.text,
        correct=result.passed,
        reason=result.reason,
        tokens_out=reply.tokens_out,
    )


async def evaluate(
    gw: Gateway, model: str, items: list[BenchmarkItem], runs: int, system: Prompt
) -> list[EvalRow]:
    """Every question, `runs` times, concurrently under the gateway's limits."""
    return list(
        await asyncio.gather(
            *(_ask(gw, model, item, run, system) for run in range(runs) for item in items)
        )
    )


def summarize(rows: list[EvalRow], resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Accuracy per run, their mean, and a percentile bootstrap 95% interval over questions."""
    runs = sorted({r.run for r in rows})
    per_run = [statistics.fmean(r.correct for r in rows if r.run == k) for k in runs]
    by_question: dict[str, list[bool]] = {}
    for r in rows:
        by_question.setdefault(r.question_id, []).append(r.correct)
    scores = [statistics.fmean(v) for v in by_question.values()]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(scores, k=len(scores))) for _ in range(resamples))
    return {
        "questions": len(scores),
        "runs": len(runs),
        "accuracy_per_run": [round(a, 4) for a in per_run],
        "mean": round(statistics.fmean(per_run), 4),
        "ci95": [
            round(means[int(0.025 * resamples)], 4),
            round(means[int(0.975 * resamples) - 1], 4),
        ],
    }
