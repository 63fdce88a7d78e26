"""A question source in SimpleBench's manner: procedural generators, one module per kind
(spatio-temporal tracking, physical common sense with irrelevant numbers, social reasoning,
trick arithmetic), each question with six options and one checkable right letter, the
distractors built to catch the pattern-matching answer. Seeded: the same config always yields
the same questions; shard s of n takes items s, s+n, ..., every kind in turn."""

from __future__ import annotations

import json
import random

from raspberry.records import Lineage, Question
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.simplebench_style import arithmetic, physical, social, tracking
from raspberry.stages.candidates.simplebench_style.registry import GENERATORS, register, shuffled
from raspberry.stages.candidates.text import question_id

SOURCE = "simplebench_style"

register("tracking", tracking.make, tracking.TrackingConfig)
register("physical", physical.make, physical.PhysicalConfig)
register("social", social.make, social.SocialConfig)
register("arithmetic", arithmetic.make, arithmetic.ArithmeticConfig)


def generate(cfg: QuestionsConfig, config_hash: str, shard: int) -> list[Question]:
    """This shard's questions, from each item's own seed; the kinds take turns within every
    shard (item i is of kind (i // shards) mod len(kinds))."""
    source = cfg.simplebench_style
    if source is None:
        return []
    out = []
    for index in range(shard, source.count, cfg.shards):
        kind = GENERATORS[source.kinds[(index // cfg.shards) % len(source.kinds)]]
        rng = random.Random(f"{cfg.seed}|{SOURCE}|{index}")
        item = kind.make(rng, kind.config())
        prompt, letter = shuffled(item, rng)
        qid = question_id(prompt)
        out.append(
            Question(
                id=qid,
                source=SOURCE,
                task=kind.name,
                domain="simplebench",
                style="multiple_choice",
                difficulty="default",
                prompt=prompt + "\n\nEnd with 'Final answer: ' and the letter of your choice.",
                reference_answer=letter,
                verification=json.dumps({"kind": "mcq", "reference": letter}),
                lineage=Lineage(
                    question_id=qid,
                    config_hash=config_hash,
                    steps=[f"{SOURCE} {kind.name} item {index}: the trap {item.trap}"],
                ),
            )
        )
    return out
