"""The simulated teacher's real solvers for a few reasoning-gym families.

Each reads only the question text and works the answer out itself, step by step; it never sees a
gold answer. solve() returns None for a question it does not recognise.
"""

from __future__ import annotations

import ast
import hashlib
import operator
import re
from dataclasses import dataclass
from fractions import Fraction

# What a user whose own questions went unsolved is told (flows/build.py).
SOLVES = (
    "it works out only the patterns of reasoning-gym's basic_arithmetic, chain_sum, "
    "letter_counting, word_sorting and simple_equations, and questions phrased like them "
    "('Calculate 48 + 17 * 3.', 'Solve for x: 3*x + 7 = 25'); point models.teacher at a real "
    "model for other questions"
)

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@dataclass
class Solution:
    family: str
    steps: list[str]
    answer: str
    choices: str = ""  # option letters of a multiple-choice question
    rules: list | None = None  # the checks of a rule puzzle, as the question states them


def _eval(node: ast.AST, env: dict[str, Fraction]) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(str(node.value))
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    raise ValueError("unsupported expression")


def evaluate(expr: str, env: dict[str, Fraction] | None = None) -> Fraction:
    return _eval(
        ast.parse(expr.strip().replace("×", "*").replace("÷", "/"), mode="eval"), env or {}
    )


def _fmt(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10g}"


def _arithmetic(family: str, expr: str) -> Solution:
    steps = [f"I need to evaluate {expr}."]
    tree = ast.parse(expr, mode="eval").body
    # Left-to-right chains: show running totals so the reasoning is visible.
    if isinstance(tree, ast.BinOp):
        total = None
        for part in _chain(tree):
            if total is None:
                total = evaluate(ast.unparse(part))
                steps.append(f"Start with {_fmt(total)}.")
            else:
                op, operand = part
                value = evaluate(ast.unparse(operand))
                total = _OPS[type(op)](total, value)
                symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(op)]
                steps.append(f"Apply {symbol} {_fmt(value)}: that gives {_fmt(total)}.")
    result = evaluate(expr)
    steps.append(f"Checking the whole expression once more gives {_fmt(result)}.")
    return Solution(family, steps, _fmt(result))


def _chain(node: ast.BinOp) -> list:
    """Flatten a flat-precedence chain a op b op c into [a, (op, b), (op, c)]."""
    parts: list = []
    while (
        isinstance(node, ast.BinOp)
        and isinstance(node.left, ast.BinOp)
        and type(node.op) in (ast.Add, ast.Sub)
        and type(node.left.op) in (ast.Add, ast.Sub)
    ):
        parts.insert(0, (node.op, node.right))
        node = node.left
    if isinstance(node, ast.BinOp):
        return [node.left, (node.op, node.right), *parts]
    return [node, *parts]


def _letter_counting(text: str) -> Solution | None:
    m = re.search(r'letter "(\w)" appear in the text: "([^"]*)"', text)
    if not m:
        return None
    letter, span = m.group(1), m.group(2)
    steps = [f'I count the letter "{letter}" word by word in: "{span}".']
    total = 0
    for word in span.split():
        n = word.lower().count(letter.lower())
        if n:
            total += n
            steps.append(f'"{word}" has {n}; running total {total}.')
    steps.append(f"Every word is checked, so the total is {total}.")
    return Solution("letter_counting", steps, str(total))


def _word_sorting(text: str) -> Solution | None:
    m = re.search(r"sort these words in (ascending|descending) order.*?list:\s*(.+)", text, re.S)
    if not m:
        return None
    direction, words = m.group(1), [w.strip() for w in m.group(2).strip().split(",")]
    ordered = sorted(words, reverse=direction == "descending")
    steps = [
        f"The words are: {', '.join(words)}.",
        "ASCII order puts uppercase letters before lowercase ones, so I compare code points.",
        f"Sorted in {direction} order: {', '.join(ordered)}.",
    ]
    return Solution("word_sorting", steps, ", ".join(ordered))


def _simple_equation(text: str) -> Solution | None:
    m = re.search(
        r"(?:Solve for (\w)|Find the value of (\w) in the equation"
        r"|Determine the value of (\w) that satisfies):\s*(.+?)\s*$",
        text,
        re.S,
    )
    if not m:
        return None
    var = m.group(1) or m.group(2) or m.group(3)
    left, _, right = m.group(4).partition("=")
    if not right:
        return None

    def f(x: Fraction) -> Fraction:
        return evaluate(left, {var: x}) - evaluate(right, {var: x})

    # The equation is linear: f(x) = a*x + b.
    b = f(Fraction(0))
    a = f(Fraction(1)) - b
    if a == 0:
        return None
    x = -b / a
    steps = [
        f"The equation is {left.strip()} = {right.strip()}.",
        f"Moving everything to one side gives {_fmt(a)}*{var} + {_fmt(b)} = 0.",
        f"So {var} = {_fmt(-b)} / {_fmt(a)} = {_fmt(x)}.",
        f"Check: substituting {var} = {_fmt(x)} makes both sides equal.",
    ]
    return Solution("simple_equations", steps, _fmt(x))


# Words by length for rule puzzles ("the k-th word has k letters").
CONSTRAINT_WORDS = {
    1: ["a", "I"],
    2: ["an", "we", "by", "at", "to"],
    3: ["sea", "old", "red", "cat", "sun", "owl"],
    4: ["blue", "wave", "tide", "ship", "calm", "moon"],
    5: ["quiet", "ocean", "green", "storm", "light"],
    6: ["harbor", "silver", "breeze", "sailor", "island"],
    7: ["journey", "weather", "morning", "lantern", "glacier"],
    8: ["mountain", "northern", "daylight", "sunlight"],
    9: ["beautiful", "wandering", "starlight", "waterfall"],
}


def _rule_puzzle(text: str, pick: int) -> Solution | None:
    m = re.search(r"of exactly (\d+) words in which the k-th word has exactly k letters", text)
    if not m:
        return None
    n = int(m.group(1))
    if not 1 <= n <= 9:
        return None
    chosen = [CONSTRAINT_WORDS[k][(pick + k) % len(CONSTRAINT_WORDS[k])] for k in range(1, n + 1)]
    steps = [f"I need {n} words; word k must have k letters."]
    steps += [f"Word {k}: {w!r} has {len(w)} letters." for k, w in enumerate(chosen, 1)]
    rules = [{"rule": "word_count", "equals": n}, {"rule": "nth_word_has_n_letters"}]
    return Solution("rule_puzzle", steps, " ".join(chosen), rules=rules)


def _word_problem(text: str) -> Solution | None:
    m = re.search(r"(\w+) starts with (\d+) (\w+)\.", text)
    if not m or not re.search(r"How many \w+ does \w+ have at the end\?$", text):
        return None
    total = int(m.group(2))
    steps = [f"{m.group(1)} starts with {total} {m.group(3)}."]
    for step in re.finditer(
        r"Then \w+ (?:gets (\d+) more|gives away (\d+)|ends up with (\d+) times as many)", text
    ):
        more, away, times = step.groups()
        if more:
            total += int(more)
            steps.append(f"Getting {more} more makes {total}.")
        elif away:
            total -= int(away)
            steps.append(f"Giving away {away} leaves {total}.")
        else:
            total *= int(times)
            steps.append(f"{times} times as many makes {total}.")
    steps.append(f"After every step the count is {total}.")
    return Solution("word_problem", steps, str(total))


def _common_sense(stem: str, options: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The option a careful reader picks in the writer's trick questions, and why."""

    def find(wanted: str) -> str | None:
        return next((letter for letter, o in options if o.strip().lower() == wanted.lower()), None)

    if m := re.search(r"turns the cup upside down on the (\w+)", stem):
        surface = m.group(1)
        letter = next((le for le, o in options if f"on the {surface}" in o.lower()), None)
        why = f"An upside-down cup lifted off the {surface} leaves what was under it behind."
    elif m := re.search(r"boils one egg in (\d+) minutes", stem):
        letter, why = find(m.group(1)), "Eggs boiled together in one pot take no longer than one."
    elif m := re.search(r"(\w+)'s mother has four children", stem):
        letter, why = find(m.group(1)), f"{m.group(1)} is the mother's fourth child."
    else:
        return None
    return (letter, why) if letter else None


def _multiple_choice(text: str) -> Solution | None:
    options = re.findall(r"^\s*([A-F])[.)]\s*(.+?)\s*$", text, re.M)
    if len(options) < 2:
        return None
    letters = "".join(letter for letter, _ in options)
    stem = re.split(r"^\s*[A-F][.)]", text, maxsplit=1, flags=re.M)[0].strip()
    if sense := _common_sense(stem, options):
        letter, why = sense
        steps = ["I ignore the details that do not matter.", why, f"That is option {letter}."]
        return Solution("trick_mcq", steps, letter, letters)
    m = re.search(r"(?:what is|calculate|compute)\s+([-\d\s+*/().]+?)\s*\?", stem, re.I)
    if m:
        value = evaluate(m.group(1))
        for letter, option in options:
            try:
                if evaluate(option.rstrip(".")) == value:
                    steps = [
                        f"I evaluate {m.group(1).strip()} = {_fmt(value)}.",
                        f"Option {letter} is {option}, which matches.",
                    ]
                    return Solution("multiple_choice", steps, letter, letters)
            except (ValueError, SyntaxError, ZeroDivisionError):
                continue
    # Not something it can compute: a considered guess, the same one every time.
    guess = letters[int(hashlib.sha256(stem.encode()).hexdigest(), 16) % len(letters)]
    steps = [
        "I weigh each option against what would realistically happen.",
        f"Option {guess} seems the most plausible, though I am not certain.",
    ]
    return Solution("multiple_choice", steps, guess, letters)


def _code_function(text: str) -> Solution | None:
    """ "Write a Python function `f3(n)` that returns 7 times n.": the function, fenced."""
    m = re.search(r"Python function `(\w+)\(n\)` that returns (\d+) times n", text)
    if not m:
        return None
    name, k = m.group(1), int(m.group(2))
    code = f"```python\ndef {name}(n):\n    return {k} * n\n```"
    return Solution("code", [f"{name} multiplies its argument by {k}."], code)


def solve(question: str) -> Solution | None:
    text = question.strip()
    try:
        if code := _code_function(text):
            return code
        if mc := _multiple_choice(text):
            return mc
        if m := re.match(r"Calculate (.+?)\.?$", text):
            return _arithmetic("basic_arithmetic", m.group(1))
        if m := re.search(r"arithmetic problem:\s*(.+?)\s*=\s*$", text):
            return _arithmetic("chain_sum", m.group(1))
        return (
            _letter_counting(text)
            or _word_sorting(text)
            or _simple_equation(text)
            or _word_problem(text)
            or _rule_puzzle(text, int(hashlib.sha256(text.encode()).hexdigest(), 16) % 7)
        )
    except (ValueError, SyntaxError, ZeroDivisionError):
        return None


def wrong_answer(solution: Solution, salt: int) -> str:
    """A plausible mistake: off by a little for numbers, two words swapped for lists."""
    if solution.choices:
        others = [c for c in solution.choices if c != solution.answer]
        return others[salt % len(others)]
    if solution.family == "code":  # the wrong factor
        return re.sub(
            r"return (\d+) \* n", lambda m: f"return {int(m[1]) + 1} * n", solution.answer
        )
    try:
        value = Fraction(solution.answer)
        return _fmt(value + (1 + salt % 3) * (1 if salt % 2 else -1))
    except ValueError:
        words = solution.answer.split(", ")
        if len(words) > 1:
            i = salt % (len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
            return ", ".join(words)
        return solution.answer + "s"
