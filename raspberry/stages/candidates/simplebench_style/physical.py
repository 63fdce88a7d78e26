"""Physical common sense under irrelevant arithmetic: ice cubes put in a hot frying pan minute
by minute, with counts and an average to tempt a sum. Whole cubes left after a few minutes in a
pan that fries an egg: none."""

from __future__ import annotations

import random
from dataclasses import dataclass

from raspberry.stages.candidates.simplebench_style.registry import Item, six

NAMES = ("Beth", "Carlos", "Dana", "Eli", "Fatima", "Gus")
FOODS = ("a crispy egg", "two rashers of bacon", "a pancake", "some onions")


@dataclass(frozen=True)
class PhysicalConfig:
    minutes: int = 3
    max_cubes: int = 9


def make(rng: random.Random, cfg: PhysicalConfig) -> Item:
    who, food = rng.choice(NAMES), rng.choice(FOODS)
    cubes = [rng.randint(1, cfg.max_cubes) for _ in range(cfg.minutes)]
    puts = ", ".join(f"{n} at the start of minute {i + 1}" for i, n in enumerate(cubes))
    mean = sum(cubes) / len(cubes)
    question = (
        f"{who} places whole ice cubes into a hot frying pan: {puts}. Meanwhile {who} is frying "
        f"{food} in the same pan. The average number of cubes put in per minute was "
        f"{mean:g}. How many whole ice cubes are in the pan at the end of minute {cfg.minutes}?"
    )
    total = sum(cubes)
    options = ["0", str(total), str(cubes[-1]), f"{mean:g}", str(total - cubes[0]), str(total * 2)]
    return Item(question, six(options, total + len(set(options))), "adds the cubes up")
