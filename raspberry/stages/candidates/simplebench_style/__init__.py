"""A question source in SimpleBench's manner: procedural generators, one module per kind
(spatio-temporal tracking, physical common sense with irrelevant numbers, social reasoning,
trick arithmetic), each question with six options and one checkable right letter, the
distractors built to catch the pattern-matching answer. Seeded: the same config always yields
the same questions; shard s of n takes items s, s+n, ..., every kind in turn."""

from __future__ import annotations

import random

from raspberry.build_files.records import Question
from raspberry.stages.candidates.simplebench_style import arithmetic, physical, social, tracking
from raspberry.stages.candidates.simplebench_style.registry import GENERATORS, register, shuffled
from raspberry.stages.candidates.sources import Source, SourceContext

SOURCE = "simplebench_style"

register("tracking", tracking.make, tracking.TrackingConfig)
register("physical", physical.make, physical.PhysicalConfig)
register("social", social.make, social.SocialConfig)
register("arithmetic", arithmetic.make, arithmetic.ArithmeticConfig)


async def generate(ctx: SourceContext) -> list[Question]:
    """This shard's questions, from each item's own seed; the kinds take turns within every
    shard (item i is of kind (i // shards) mod len(kinds))."""
    source = ctx.questions.simplebench_style
    assert source is not None
    out = []
    for index in ctx.items(source.count):
        kind = GENERATORS[source.kinds[(index // ctx.shards) % len(source.kinds)]]
        rng = random.Random(f"{ctx.questions.seed}|{SOURCE}|{index}")
        item = kind.make(rng, kind.config())
        prompt, letter = shuffled(item, rng)
        out.append(
            ctx.question(
                prompt + "\n\nEnd with 'Final answer: ' and the letter of your choice.",
                letter,
                {"kind": "mcq", "reference": letter},
                task=kind.name,
                domain="simplebench",
                style="multiple_choice",
                difficulty="default",
                steps=(f"{SOURCE} {kind.name} item {index}: the trap {item.trap}",),
            )
        )
    return out


SPEC = Source(SOURCE, generate, enabled=lambda questions: questions.simplebench_style is not None)
