"""Social reasoning: what someone means, not what the words say. A guest's polite words about
food they plainly dislike; the literal reading is the trap."""

from __future__ import annotations

import random
from dataclasses import dataclass

from raspberry.stages.candidates.simplebench_style.registry import Item

HOSTS = ("Maria", "Kenji", "Olga", "Tariq", "Ines", "Samuel")
GUESTS = ("a neighbour", "a colleague", "a cousin", "an old friend", "a new acquaintance")
DISHES = ("soup", "casserole", "curry", "cake", "stew", "pie")
REACTIONS = (
    "takes one spoonful, grimaces, pushes the plate away and says: 'Wow, this is... interesting.'",
    "takes a bite, reaches quickly for a glass of water, and says: 'It's very... unusual!'",
    "tastes it, goes quiet, and says after a long pause: 'You must give me the... recipe, one "
    "day.'",
)


@dataclass(frozen=True)
class SocialConfig:
    hours: int = 3  # how long the host spent cooking (detail that does not matter)


def make(rng: random.Random, cfg: SocialConfig) -> Item:
    host, guest, dish = rng.choice(HOSTS), rng.choice(GUESTS), rng.choice(DISHES)
    question = (
        f"{host} spent {cfg.hours} hours making a {dish} for dinner. {host}'s guest, "
        f"{guest}, {rng.choice(REACTIONS)} What does the guest most likely think of the {dish}?"
    )
    options = (
        "they dislike it but do not want to hurt the host's feelings",
        "they find it fascinating and want to know more about it",  # the literal reading
        "they love it and want the recipe at once",
        "they think it needed more time in the oven",
        "they are allergic to it",
        "they have no opinion about it",
    )
    return Item(question, options, "takes the polite words literally")
