"""Trick arithmetic: numbers that do not matter. A rope ladder on a ship's side, rungs under
water, a rising tide: the ship floats up with it, so the rungs under water stay as they were;
the pattern-matching answer does the arithmetic."""

from __future__ import annotations

import random
from dataclasses import dataclass

from raspberry.stages.candidates.simplebench_style.registry import Item, six


@dataclass(frozen=True)
class ArithmeticConfig:
    max_hours: int = 5


def make(rng: random.Random, cfg: ArithmeticConfig) -> Item:
    under, gap = rng.randint(2, 6), rng.choice((20, 25, 30, 40))
    rise, hours = rng.choice((10, 15, 20, 30)), rng.randint(2, cfg.max_hours)
    question = (
        f"A rope ladder hangs over the side of a ship floating in a harbour. Its rungs are {gap} "
        f"cm apart and {under} rungs are under water. The tide rises {rise} cm per hour. After "
        f"{hours} hours, how many rungs are under water?"
    )
    naive = under + rise * hours // gap
    options = [str(under), str(naive), str(under + hours), str(max(0, under - hours)),
               str(rise * hours), str(under * hours)]  # fmt: skip
    return Item(question, six(options, max(map(int, options)) + 1), "adds the tide's rise in rungs")
