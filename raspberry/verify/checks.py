"""Programmatic verifiers, chosen by the `kind` of a question's verification spec.

A spec is a JSON object with a `kind` and that kind's parameters:

- {"kind": "reasoning_gym", "task": NAME, "entry": {question, answer, metadata}}: the task's own
  scorer; only a score of 1.0 passes.
- {"kind": "mcq", "reference": "C"}: one letter A-F (see verify/mcq.py); several letters fail.
- {"kind": "exact", "reference": "Paris"}: equal after case, spacing and end punctuation are
  normalised.
- {"kind": "numeric", "reference": "3.14", "tolerance": 0.01}: within an absolute tolerance
  (default 1e-6 relative to the reference).
- {"kind": "math", "reference": "\\frac{1}{2}"}: mathematically equal (math-verify, gold first;
  run in a worker process with a hard timeout, see verify/math.py).
- {"kind": "list", "reference": "3, 1 and 2", "ordered": true, "case_sensitive": false}: the
  final answer's items equal the reference's (a list or a text), in order unless ordered is
  false; separators and "and" normalised (verify/lists.py).
- {"kind": "constraint", "rules": [{"rule": "word_count", "equals": 10}, ...]}: every predicate
  holds for the final answer (see verify/constraints.py for the rules).
- {"kind": "code", "tests": "assert f(2) == 4", "limits": {...}}: the tests, run against the
  names that the answer's last fenced code block defines, reach their end; answer and tests run
  in two sandboxes and only plain values pass between them (verify/sandbox.py; limits optional).
- {"kind": "judge"}: no programmatic check; an LLM compares the answer with the reference.

Each kind is a `Verifier` in one registry, checked when registered, that also names the answer
types making its specs; your own kind registers through `raspberry.register_verifier` or a
`raspberry.verifiers` entry point.

docs/verification.md is the public description of this contract.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from raspberry.verify.constraints import RULES, broken_rules
from raspberry.verify.extract import extract_final_answer
from raspberry.verify.lists import compare_lists, list_items
from raspberry.verify.math import MATH
from raspberry.verify.mcq import extract_choice
from raspberry.verify.sandbox import limits_of, run_tests


class CheckResult(BaseModel):
    passed: bool
    reason: str


@cache
def rg_scorer(task: str) -> Callable[[str, dict[str, Any]], float]:
    import reasoning_gym  # imported lazily: it takes a second and only this verifier needs it

    return reasoning_gym.get_score_answer_fn(task)


def final_answer(answer_text: str) -> str | None:
    """The final answer; a one-line text with no 'Final answer:' is taken as the answer itself."""
    answer = extract_final_answer(answer_text)
    if answer is None and answer_text.strip() and "\n" not in answer_text.strip():
        answer = answer_text.strip()
    return answer


def _of_final_answer(
    verify: Callable[[dict[str, Any], str], CheckResult],
) -> Callable[[dict[str, Any], str], CheckResult]:
    """A verifier of the final answer alone: a text without one fails, saying so."""

    def check_final(spec: dict[str, Any], text: str) -> CheckResult:
        answer = final_answer(text)
        if answer is None:
            return CheckResult(passed=False, reason="no final answer found")
        return verify(spec, answer)

    return check_final


@_of_final_answer
def _reasoning_gym(spec: dict[str, Any], answer: str) -> CheckResult:
    score = rg_scorer(spec["task"])(answer, spec["entry"])
    if score == 1.0:
        return CheckResult(passed=True, reason="reasoning_gym score 1.0")
    return CheckResult(passed=False, reason=f"reasoning_gym score {score:g} (only 1.0 passes)")


def _mcq(spec: dict[str, Any], text: str) -> CheckResult:
    choice = extract_choice(text)
    if choice is None:
        return CheckResult(passed=False, reason="no single option letter found")
    reference = str(spec["reference"]).strip().upper()
    if choice == reference:
        return CheckResult(passed=True, reason=f"chose {choice}")
    return CheckResult(passed=False, reason=f"chose {choice}, expected {reference}")


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip(".!?,;:").strip().casefold()


@_of_final_answer
def _exact(spec: dict[str, Any], answer: str) -> CheckResult:
    reference = str(spec["reference"])
    if _normalise(answer) == _normalise(reference):
        return CheckResult(passed=True, reason="matches the reference")
    # A list reference ("3, 1, 2") is met by the same items however they are separated.
    if len(list_items(reference)) > 1 and compare_lists(answer, reference, True, False)[0]:
        return CheckResult(passed=True, reason="the reference's items, in order")
    return CheckResult(passed=False, reason=f"{answer!r} differs from the reference")


def _number(answer: str) -> float:
    """A plain, comma-grouped, scientific or fractional number ("1/2", "\\frac{1}{2}")."""
    text = answer.replace(",", "").replace(" ", "")
    text = re.sub(r"^\\d?frac\{(-?\d+)\}\{(-?\d+)\}$", r"\1/\2", text)
    try:
        return float(text)
    except ValueError:
        return float(Fraction(text))  # ValueError or ZeroDivisionError when not a number


def _numeric(spec: dict[str, Any], text: str) -> CheckResult:
    answer = final_answer(text)
    try:
        value = _number(answer or "")
    except (ValueError, ZeroDivisionError):
        return CheckResult(passed=False, reason=f"not a number: {answer!r}")
    reference = float(spec["reference"])
    tolerance = float(spec.get("tolerance", 1e-6 * max(1.0, abs(reference))))
    if math.isfinite(value) and abs(value - reference) <= tolerance:
        return CheckResult(passed=True, reason=f"{value:g} within {tolerance:g} of the reference")
    return CheckResult(
        passed=False, reason=f"{value:g} is not within {tolerance:g} of {reference:g}"
    )


def _math(spec: dict[str, Any], text: str) -> CheckResult:
    answer = final_answer(text) or text
    if not answer.strip():
        return CheckResult(passed=False, reason="empty answer")
    equal = MATH.verify_many([(str(spec["reference"]), answer)])[0]
    if equal is None:
        return CheckResult(passed=False, reason="math-verify timed out")
    if equal:
        return CheckResult(passed=True, reason="mathematically equal to the reference")
    return CheckResult(passed=False, reason=f"{answer[:200]!r} is not equal to the reference")


@_of_final_answer
def _list(spec: dict[str, Any], answer: str) -> CheckResult:
    ordered, case = bool(spec.get("ordered", True)), bool(spec.get("case_sensitive", False))
    passed, reason = compare_lists(answer, spec["reference"], ordered, case)
    return CheckResult(passed=passed, reason=reason)


@_of_final_answer
def _constraint(spec: dict[str, Any], answer: str) -> CheckResult:
    problems = broken_rules(answer, spec["rules"])
    if problems:
        return CheckResult(passed=False, reason="; ".join(problems))
    return CheckResult(passed=True, reason=f"all {len(spec['rules'])} rules hold")


_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.S | re.I)


def _code(spec: dict[str, Any], text: str) -> CheckResult:
    blocks = _FENCE.findall(text)
    if not blocks:
        return CheckResult(passed=False, reason="no fenced code block found")
    limits, clamped = limits_of(spec.get("limits", {}))
    bounded = f" ({'; '.join(clamped)}, the verification bounds)" if clamped else ""
    run = run_tests(blocks[-1], spec["tests"], limits)
    if run.ok:
        return CheckResult(passed=True, reason=f"the tests pass{bounded}")
    return CheckResult(passed=False, reason=f"the tests fail: {run.reason}{bounded}")


def _constraint_problem(spec: dict[str, Any]) -> str | None:
    rules = spec.get("rules")
    if not isinstance(rules, list) or not rules:
        return "a constraint question needs a non-empty list of rules"
    unknown = [
        r.get("rule") for r in rules if not isinstance(r, dict) or r.get("rule") not in RULES
    ]
    return f"unknown constraint rules {unknown}; known: {sorted(RULES)}" if unknown else None


def _code_problem(spec: dict[str, Any]) -> str | None:
    if not isinstance(spec.get("tests"), str) or not spec["tests"].strip():
        return 'a code question needs its tests as Python source in "tests"'
    try:
        limits_of(spec.get("limits", {}))
    except ValueError as exc:
        return f"bad code limits: {exc}"
    return None


# (reference answer, the question writer's rules) -> the verification spec of an answer type.
SpecMaker = Callable[[str, list[dict[str, Any]]], dict[str, Any]]


def _with_reference(kind: str) -> SpecMaker:
    return lambda reference, rules: {"kind": kind, "reference": reference.strip()}


@dataclass(frozen=True)
class Verifier:
    """A kind of verification spec: how an answer is checked against it, and the answer types
    (a question file's `answer_type`, the question writer's) that make such a spec."""

    kind: str
    check: Callable[[dict[str, Any], str], CheckResult]  # (spec, response) -> passed and why
    answer_types: dict[str, SpecMaker] = field(default_factory=dict)
    # What a spec of this kind lacks, checked before any answer is (None: nothing).
    problem: Callable[[dict[str, Any]], str | None] = lambda spec: None
    # Whether a question's reference answer must pass its own spec (not when the reference is
    # no answer in the spec's terms, as a code question's tests are not).
    self_checked: bool = True
    slow: bool = False  # may take seconds (a worker process, the sandbox): run off the loop


_REGISTRY: dict[str, Verifier] = {}
_entry_points_loaded = False
ENTRY_POINTS = "raspberry.verifiers"
JUDGED = "judge"  # the answer type and kind of a question only the judge can check


def register_verifier(verifier: Verifier) -> Verifier:
    """Add a kind; what it declares is checked here, not when the first answer comes."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", verifier.kind) or verifier.kind == JUDGED:
        raise ValueError(f"verifier kind {verifier.kind!r}: lower case letters, digits and _")
    if verifier.kind in _REGISTRY and _REGISTRY[verifier.kind] is not verifier:
        raise ValueError(f"a verifier of kind {verifier.kind!r} is already registered")
    taken = {JUDGED} | {t for v in _REGISTRY.values() if v is not verifier for t in v.answer_types}
    if clash := sorted(taken & set(verifier.answer_types)):
        raise ValueError(f"verifier {verifier.kind!r}: answer types {clash} are taken")
    _REGISTRY[verifier.kind] = verifier
    return verifier


def verifiers() -> dict[str, Verifier]:
    """Every kind: the built-in ones, those registered in this process, and those of the
    installed packages' `raspberry.verifiers` entry points (loaded once)."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for point in entry_points(group=ENTRY_POINTS):
            register_verifier(point.load())
    return _REGISTRY


def answer_types() -> dict[str, SpecMaker]:
    """Every answer type a question may name, with the spec it makes."""
    return {t: make for v in verifiers().values() for t, make in v.answer_types.items()}


for _builtin in (
    Verifier("reasoning_gym", _reasoning_gym, self_checked=False),
    Verifier(
        "mcq",
        _mcq,
        {"mcq": lambda ref, rules: {"kind": "mcq", "reference": ref.strip().strip("()").upper()}},
    ),
    Verifier("exact", _exact, {"exact": _with_reference("exact")}),
    Verifier("numeric", _numeric, {"numeric": _with_reference("numeric")}),
    Verifier("math", _math, {"math": _with_reference("math")}, slow=True),
    Verifier(
        "list",
        _list,
        {
            kind: lambda ref, rules, ordered=(kind == "list"): {
                "kind": "list",
                "reference": ref.strip(),
                "ordered": ordered,
            }
            for kind in ("list", "unordered_list")
        },
    ),  # fmt: skip
    Verifier(
        "constraint",
        _constraint,
        {"constraint": lambda ref, rules: {"kind": "constraint", "rules": rules}},
        problem=_constraint_problem,
    ),
    Verifier("code", _code, problem=_code_problem, self_checked=False, slow=True),
):
    register_verifier(_builtin)


def _spec(spec: dict[str, Any] | str) -> dict[str, Any]:
    return json.loads(spec) if isinstance(spec, str) else spec


# Reasons of a check that found no answer to judge: the response did not follow the format.
UNREADABLE = (
    "no final answer found",
    "no single option letter found",
    "not a number",
    "no fenced code block found",
    "empty answer",
)


def readable(result: CheckResult) -> bool:
    """Whether the verifier found an answer in the response, right or wrong."""
    return result.passed or not result.reason.startswith(UNREADABLE)


def has_verifier(spec: dict[str, Any] | str) -> bool:
    return _spec(spec).get("kind") in verifiers()


async def acheck(spec: dict[str, Any] | str, answer_text: str) -> CheckResult:
    """check() for async callers: slow kinds run in a thread, so other dialogues go on."""
    verifier = verifiers().get(_spec(spec).get("kind"))  # type: ignore[arg-type]
    if verifier and verifier.slow:
        return await asyncio.to_thread(check, spec, answer_text)
    return check(spec, answer_text)


def check(spec: dict[str, Any] | str, answer_text: str) -> CheckResult:
    """Whether answer_text (a full response or a bare answer) passes the spec, and why."""
    spec = _spec(spec)
    verifier = verifiers().get(spec.get("kind"))  # type: ignore[arg-type]
    if verifier is None:
        return CheckResult(passed=False, reason=f"no verifier for kind {spec.get('kind')!r}")
    try:
        return verifier.check(spec, answer_text)
    except (KeyError, TypeError, ValueError) as exc:
        return CheckResult(passed=False, reason=f"bad {spec.get('kind')} spec: {exc}")
