"""The registry of SimpleBench-style generators: one module per kind of question, each a config
and a `make(rng, config) -> Item`; entries are checked when registered (a unique name, a
callable, a config type), as reasoning-gym's factory checks its datasets."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LETTERS = "ABCDEF"


@dataclass(frozen=True)
class Item:
    """One question with six options: the right one first in `options`, and the distractors
    built to catch the answer a pattern-matcher gives."""

    question: str
    options: tuple[str, str, str, str, str, str]
    # what the distractor that looks right would be chosen for (for the lineage)
    trap: str


@dataclass(frozen=True)
class Generator:
    name: str
    make: Callable[[random.Random, Any], Item]
    config: type  # its settings, all with defaults


GENERATORS: dict[str, Generator] = {}


def register(name: str, make: Callable[[random.Random, Any], Item], config: type) -> None:
    if name in GENERATORS:
        raise ValueError(f"a SimpleBench-style generator named {name!r} is already registered")
    if not callable(make) or not isinstance(config, type):
        raise TypeError(f"generator {name!r}: make must be callable and config a type")
    config()  # every setting has a default
    GENERATORS[name] = Generator(name, make, config)


def six(options: list[str], pad_from: int) -> tuple[str, str, str, str, str, str]:
    """The options without repeats (counts can coincide), made up to six with the numbers from
    `pad_from` up that are not among them; the right one stays first."""
    out = list(dict.fromkeys(options))
    n = pad_from
    while len(out) < 6:
        if str(n) not in out:
            out.append(str(n))
        n += 1
    return tuple(out[:6])  # type: ignore[return-value]


def shuffled(item: Item, rng: random.Random) -> tuple[str, str]:
    """The question with its options lettered A-F in a seeded order, and the right letter."""
    order = list(range(6))
    rng.shuffle(order)
    lines = [f"{LETTERS[i]}. {item.options[k]}" for i, k in enumerate(order)]
    return f"{item.question}\n\n" + "\n".join(lines), LETTERS[order.index(0)]
