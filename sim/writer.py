"""The simulated question writer and evolver.

The writer reads the taxonomy cell from its prompt and writes a question of that style, in forms
the simulated teacher can really solve (solvers.py): multi-step word problems, SimpleBench-like
trick questions with six options, and rule puzzles. Like a real writer it sometimes errs, at fixed
rates: invalid JSON (fixed when re-asked), a wrong reference answer, or a light rewording of a
question written for the same cell. The evolver deepens word problems and trick questions, and
sometimes refuses, changes nothing, or copies the prompt's words into the question.
"""

from __future__ import annotations

import json
import random
import re

from raspberry_sim.solvers import CONSTRAINT_WORDS, solve

INVALID_JSON_RATE = 0.04
WRONG_REFERENCE_RATE = 0.08
REWORDED_RATE = 0.03
EVOLVE_FAILURES = {"refuse": 0.08, "unchanged": 0.08, "copy_template": 0.06}

NAMES = (
    "Ada Ben Chloe Dev Emil Farah Gus Hana Ivo Jun Kemal Lena Milo Nia Omar Pia Quinn Rosa Sami "
    "Tariq Uma Vera Wes Xena Yusuf Zoe"
).split()
UNITS = "crates jars coins stamps tickets bolts seedlings books marbles bottles".split()
PLACES = "depot workshop library greenhouse market harbour studio warehouse lab bakery".split()
SURFACES = "table desk shelf counter bench".split()
ROOMS = "kitchen garage attic cellar hallway garden".split()
DISTRACTIONS = (
    "The radio is playing an old song the whole time.",
    "A neighbour waves through the window and then leaves.",
    "It is raining heavily outside and the lights flicker once.",
    "Somebody has left a half-eaten sandwich nearby.",
    "The clock on the wall is running five minutes fast.",
    "A cat wanders in, sniffs around and wanders out again.",
)


def _section(text: str, tag: str) -> str:
    m = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.S)
    return m.group(1).strip() if m else ""


def _cell(prompt: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+): (.*)$", _section(prompt, "cell"), re.M))


def _opening(rng: random.Random, cell: dict[str, str]) -> str:
    persona = cell.get("persona", "someone")
    topic = cell.get("subtopic", "a topic")
    return rng.choice(
        (
            f"As {persona} working on {topic}, I ran into this.",
            f"I am {persona}, and this came up while I was reading about {topic}.",
            f"Here is one from {persona} who studies {topic}.",
            f"A puzzle for {persona} with a taste for {topic}.",
        )
    )


def word_problem(rng: random.Random, cell: dict[str, str]) -> tuple[str, str, str]:
    name, unit, place = rng.choice(NAMES), rng.choice(UNITS), rng.choice(PLACES)
    total = rng.randint(20, 400)
    lines = [f"{name} keeps {unit} at the {place}. {name} starts with {total} {unit}."]
    for _ in range(rng.randint(2, 4)):
        kind = rng.choice(("more", "away", "times"))
        if kind == "times" and total < 2000:
            k = rng.randint(2, 4)
            lines.append(f"Then {name} ends up with {k} times as many {unit}.")
            total *= k
        elif kind == "away" and total > 10:
            n = rng.randint(1, total - 1)
            lines.append(f"Then {name} gives away {n} {unit}.")
            total -= n
        else:
            n = rng.randint(3, 250)
            lines.append(f"Then {name} gets {n} more {unit}.")
            total += n
    question = (
        f"{_opening(rng, cell)} {' '.join(lines)} How many {unit} does {name} have at the end?"
    )
    return question, str(total), "numeric"


def _options(rng: random.Random, right: str, wrong: list[str]) -> tuple[str, str]:
    choices = [right, *rng.sample(wrong, 5)]
    rng.shuffle(choices)
    letters = "ABCDEF"
    listed = "\n".join(f"{letters[i]}) {c}" for i, c in enumerate(choices))
    return listed, letters[choices.index(right)]


def trick_question(rng: random.Random, cell: dict[str, str]) -> tuple[str, str, str]:
    name, distraction = rng.choice(NAMES), rng.choice(DISTRACTIONS)
    kind = rng.choice(("spatial", "temporal", "social"))
    if kind == "spatial":
        surface, room, other = rng.choice(SURFACES), *rng.sample(ROOMS, 2)
        thing = rng.choice(("marble", "coin", "grape", "ring", "button"))
        stem = (
            f"In the {room}, {name} drops a {thing} into an empty cup and turns the cup upside "
            f"down on the {surface}. {distraction} Then {name} picks up the cup and carries it "
            f"to the {other}. Where is the {thing} now?"
        )
        right = f"Still on the {surface} in the {room}"
        wrong = [
            f"Inside the cup in the {other}",
            f"On the floor of the {other}",
            f"In {name}'s pocket",
            f"Under the cup in the {other}",
            f"Stuck to the bottom of the cup in the {room}",
            "Nowhere: it has dissolved",
        ]
    elif kind == "temporal":
        minutes, eggs = rng.randint(4, 12), rng.randint(3, 9)
        stem = (
            f"{name} boils one egg in {minutes} minutes. {distraction} Today {name} boils "
            f"{eggs} eggs together in the same large pot of boiling water. How many minutes does "
            f"boiling the {eggs} eggs take?"
        )
        values = {minutes * eggs, minutes + eggs, minutes * 2, minutes + 1, max(1, minutes - 1)}
        values |= {minutes * eggs // 2 + 1, minutes * 3}
        values.discard(minutes)
        right, wrong = str(minutes), [str(v) for v in sorted(values)]
    else:
        children = rng.sample([n for n in NAMES if n != name], 3)
        stem = (
            f"{name}'s mother has four children. Three of them are {children[0]}, "
            f"{children[1]} and {children[2]}. {distraction} What is the name of the fourth child?"
        )
        right = name
        wrong = ["Nobody knows", *rng.sample([n for n in NAMES if n not in (name, *children)], 5)]
    listed, letter = _options(rng, right, wrong)
    return f"{_opening(rng, cell)} {stem}\n{listed}", letter, "mcq"


def rule_puzzle(rng: random.Random, cell: dict[str, str]) -> tuple[str, str, str, list[dict]]:
    n = rng.randint(4, 9)
    topic = cell.get("subtopic", "the sea")
    question = (
        f"{_opening(rng, cell)} Write a sentence about {topic} of exactly {n} words in which "
        f"the k-th word has exactly k letters: the first word has 1 letter, the second 2 "
        f"letters, and so on."
    )
    reference = " ".join(rng.choice(CONSTRAINT_WORDS[k]) for k in range(1, n + 1))
    rules = [{"rule": "word_count", "equals": n}, {"rule": "nth_word_has_n_letters"}]
    return question, reference, "constraint", rules


def question_writer(prompt: str, retry: bool, sample: int, seed: int) -> str:
    cell = _cell(prompt)
    rng = random.Random(f"{seed}|{prompt}|{sample}|{retry}")
    if not retry and rng.random() < INVALID_JSON_RATE:
        return '{"question": "What is the tallest mountain on the moon?", "reference_answer": '
    if rng.random() < REWORDED_RATE:
        # The same question as another item of this cell, only the opening reworded.
        rng = random.Random(f"{seed}|{_section(prompt, 'cell')}")
    style = cell.get("style", "word_problem")
    rules: list[dict] = []
    if style == "trick_mcq":
        question, reference, kind = trick_question(rng, cell)
    elif style == "constraint_puzzle":
        question, reference, kind, rules = rule_puzzle(rng, cell)
    else:
        question, reference, kind = word_problem(rng, cell)
    if kind == "numeric" and rng.random() < WRONG_REFERENCE_RATE:
        reference = str(int(reference) + rng.choice((-2, -1, 1, 10)))
    return json.dumps(
        {
            "question": question,
            "reference_answer": reference,
            "answer_type": kind,
            "rules": rules,
            "how_to_verify": f"{kind} comparison with the reference",
        }
    )


def _deepen(question: str, operation: str, rng: random.Random) -> str | None:
    """The question made harder by the operation, or None when this evolver cannot."""
    solution = solve(question)
    if solution is None:
        return None
    if solution.family == "word_problem":
        m = re.search(r"How many (\w+) does (\w+) have at the end\?$", question)
        if not m:
            return None
        unit, name = m.groups()
        head = question[: m.start()].rstrip()
        if operation in ("add_steps", "complicate_input"):
            n = rng.randint(11, 999)
            return f"{head} Then {name} gets {n} more {unit}. {m.group(0)}"
        extra = {
            "add_constraints": f"{name} counts only whole {unit}, and every transfer happens "
            "on the same day.",
            "make_concrete": f"All of this happens on a grey Tuesday in March at {name}'s "
            "family business.",
        }[operation]
        return f"{head} {extra} {m.group(0)}"
    if solution.family == "trick_mcq":
        stem, _, options = question.partition("\n")
        return f"{stem.rstrip('?')}, given everything described above?\n{options}"
    return None


def evolver(prompt: str, seed: int) -> str:
    question = _section(prompt, "question")
    operation = _section(prompt, "operation")
    rng = random.Random(f"{seed}|evolve|{prompt}")
    roll = rng.random()
    if roll < EVOLVE_FAILURES["refuse"]:
        return "I'm sorry, but I can't make this question harder without changing what it asks."
    new = _deepen(question, operation, rng)
    roll -= EVOLVE_FAILURES["refuse"]
    if new is None or roll < EVOLVE_FAILURES["unchanged"]:
        new = question
    elif roll < EVOLVE_FAILURES["unchanged"] + EVOLVE_FAILURES["copy_template"]:
        new = f"#Rewritten Prompt#: {new}"
    solution = solve(new.removeprefix("#Rewritten Prompt#: "))
    if solution is None:
        return "I'm sorry, I cannot work out an answer to this question."
    kind = "mcq" if solution.choices else "constraint" if solution.rules else "numeric"
    return json.dumps(
        {
            "question": new,
            "reference_answer": solution.answer,
            "answer_type": kind,
            "rules": solution.rules or [],
        }
    )
