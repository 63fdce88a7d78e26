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
from raspberry.build_files.records import EvalRow
from raspberry.llm import Gateway
from raspberry.prompts import Prompt
from raspberry.verify import acheck
from raspberry.verify.checks import readable


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
        group=item.group,
        readable=readable(result),
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


def _scores(rows: list[EvalRow]) -> dict[str, float]:
    """Each question's share of correct answers over the runs."""
    by_question: dict[str, list[bool]] = {}
    for r in rows:
        by_question.setdefault(r.question_id, []).append(r.correct)
    return {q: statistics.fmean(v) for q, v in by_question.items()}


def _interval(values: list[float], resamples: int, seed: int) -> list[float]:
    """A percentile bootstrap 95% interval of the mean of `values`."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    return [round(means[int(0.025 * resamples)], 4), round(means[int(0.975 * resamples) - 1], 4)]


def summarize(rows: list[EvalRow], resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Accuracy per run, their mean, a percentile bootstrap 95% interval over questions, the
    share of answers the verifier could read, mean output tokens, and accuracy per group."""
    runs = sorted({r.run for r in rows})
    per_run = [statistics.fmean(r.correct for r in rows if r.run == k) for k in runs]
    scores = list(_scores(rows).values())
    groups = sorted({r.group for r in rows if r.group})
    return {
        "questions": len(scores),
        "runs": len(runs),
        "accuracy_per_run": [round(a, 4) for a in per_run],
        "mean": round(statistics.fmean(per_run), 4),
        "ci95": _interval(scores, resamples, seed),
        "format": round(statistics.fmean(r.readable for r in rows), 4),
        "mean_tokens_out": round(statistics.fmean(r.tokens_out for r in rows), 1),
        "by_group": {
            g: round(statistics.fmean(r.correct for r in rows if r.group == g), 4) for g in groups
        },
    }


def compare(
    base: list[EvalRow], other: list[EvalRow], resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """`other` against `base` on the same questions, paired: the difference of their accuracy
    with a paired bootstrap 95% interval (questions resampled, both models' scores together),
    and of their format compliance."""
    a, b = _scores(base), _scores(other)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two models answered no question in common")
    differences = [b[q] - a[q] for q in shared]
    readable = {
        m: statistics.fmean(r.readable for r in rows) for m, rows in (("a", base), ("b", other))
    }
    return {
        "questions": len(shared),
        "difference": round(statistics.fmean(differences), 4),
        "difference_ci95": _interval(differences, resamples, seed),
        "format_difference": round(readable["b"] - readable["a"], 4),
    }
