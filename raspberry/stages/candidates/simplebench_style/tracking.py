"""Spatio-temporal tracking: an object moved from place to place, once in a container turned
upside down on the way, so it stays where it fell out. The pattern-matching answer follows the
container to its last place."""

from __future__ import annotations

import random
from dataclasses import dataclass

from raspberry.stages.candidates.simplebench_style.registry import Item

OBJECTS = ("marble", "coin", "grape", "button", "pebble", "bead")
CONTAINERS = ("cup", "mug", "bowl", "glass", "jar")
PLACES = ("the kitchen table", "the sofa", "the bathroom shelf", "the garden bench",
          "the bedroom desk", "the hallway floor", "the garage workbench")  # fmt: skip
NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo")


@dataclass(frozen=True)
class TrackingConfig:
    moves_after: int = 2  # places the empty container visits after it was turned over


def make(rng: random.Random, cfg: TrackingConfig) -> Item:
    thing, box, who = rng.choice(OBJECTS), rng.choice(CONTAINERS), rng.choice(NAMES)
    places = rng.sample(PLACES, 2 + cfg.moves_after)
    start, fell, *later = places
    steps = [
        f"{who} puts a {thing} in a {box} on {start}.",
        f"{who} carries the {box} to {fell}, turns it upside down there and lifts it again.",
    ]
    steps += [f"Then {who} takes the {box} to {p}." for p in later]
    question = " ".join(steps) + f" Where is the {thing} now?"
    others = [p for p in PLACES if p not in places]
    options = (
        f"on {fell}",
        f"in the {box} on {later[-1]}",  # the trap: the container's last place
        f"in the {box} on {start}",
        f"on {rng.choice(others)}",
        f"in {who}'s pocket",
        "nowhere: it was lost on the way",
    )
    return Item(question, options, "follows the container to its last place")
