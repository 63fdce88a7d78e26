"""Question sets that measure a model trained on a build (`raspberry eval --build`): the build's
own validation split, or a fresh held-out set of its procedural tasks.

The held-out set is drawn from each configured reasoning-gym task with seeds the build never
used, and any question whose text is one of the build's questions is left out, so none of it
can be in the training rows.
"""

from __future__ import annotations

import json

from raspberry.benchmark_files import BenchmarkItem
from raspberry.build_files.records import Question
from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError
from raspberry.report.browse import rows_by_type
from raspberry.stages.candidates import reasoning_gym_source as rg
from raspberry.stages.config import BuildConfig

HELDOUT_SEED = 1_000_003  # added to the build's seeds: far from any seed a build uses


def _questions(store: BuildStore) -> dict[str, Question]:
    """Every question row of the build (the latest stage's row of each), by id."""
    found = rows_by_type(store, store.manifest(), Question).get(Question, [])
    return {q.id: q for _, q in found}


def _item(q: Question) -> BenchmarkItem:
    return BenchmarkItem(
        id=q.id, prompt=q.prompt, answer=q.reference_answer,
        verification=json.loads(q.verification), group=q.task or q.source,
    )  # fmt: skip


def validation_items(store: BuildStore) -> list[BenchmarkItem]:
    """The questions of the build's validation split (rows no training saw)."""
    folder = store.exports()
    rel = "validation/prompt_response.jsonl"
    if not folder.exists(rel):
        raise RaspberryError(
            f"build '{store.build_id}' has no validation split ({folder.url(rel)}); give "
            "sft.export.validation_share above 0, or evaluate with --heldout or --benchmark"
        )
    ids = [json.loads(line)["question_id"] for line in folder.read_text(rel).splitlines()]
    questions = _questions(store)
    return [_item(questions[i]) for i in ids if i in questions]


def heldout_items(config: BuildConfig, store: BuildStore, per_task: int) -> list[BenchmarkItem]:
    """Up to `per_task` new questions of each reasoning-gym task the config names, each once and
    none of the build's."""
    cfg = config.questions
    if not cfg.reasoning_gym:
        raise RaspberryError(
            "--heldout draws new questions from the config's reasoning_gym tasks, and it has none"
        )
    seen = {q.prompt for q in _questions(store).values()}
    items: list[BenchmarkItem] = []
    for position, spec in enumerate(cfg.reasoning_gym):
        # Small tasks repeat themselves (one-digit sums): draw plenty, keep each question once.
        dataset = rg.dataset(spec, cfg.seed + position + HELDOUT_SEED, per_task * 4)
        fresh = []
        for entry in dataset:
            q = rg.to_question(spec, entry, "heldout")
            if q.prompt not in seen and len(fresh) < per_task:
                seen.add(q.prompt)
                fresh.append(_item(q))
        items += fresh
    return items
