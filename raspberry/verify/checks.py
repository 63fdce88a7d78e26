"""Programmatic verifiers, chosen by the `kind` of a question's verification spec.

A spec is a JSON object with a `kind` and that kind's parameters:

- {"kind": "reasoning_gym", "task": NAME, "entry": {question, answer, metadata}}: the task's own
  scorer; only a score of 1.0 passes.
- {"kind": "mcq", "reference": "C"}: one letter A-F (see verify/mcq.py); several letters fail.
- {"kind": "exact", "reference": "Paris"}: equal after case, spacing and end punctuation are
  normalised.
- {"kind": "numeric", "reference": "3.14", "tolerance": 0.01}: within an absolute tolerance
  (default 1e-6 relative to the reference).
- {"kind": "judge"}: no programmatic check; an LLM compares the answer with the reference.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel

from raspberry.verify.extract import extract_final_answer
from raspberry.verify.mcq import extract_choice


class CheckResult(BaseModel):
    passed: bool
    reason: str


@cache
def _rg_scorer(task: str) -> Callable[[str, dict[str, Any]], float]:
    import reasoning_gym  # imported lazily: it takes a second and only this verifier needs it

    return reasoning_gym.get_score_answer_fn(task)


def _final(answer_text: str) -> str | None:
    """The final answer; a one-line text with no 'Final answer:' is taken as the answer itself."""
    answer = extract_final_answer(answer_text)
    if answer is None and answer_text.strip() and "\n" not in answer_text.strip():
        answer = answer_text.strip()
    return answer


def _reasoning_gym(spec: dict[str, Any], text: str) -> CheckResult:
    answer = _final(text)
    if answer is None:
        return CheckResult(passed=False, reason="no final answer found")
    score = _rg_scorer(spec["task"])(answer, spec["entry"])
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


def _exact(spec: dict[str, Any], text: str) -> CheckResult:
    answer = _final(text)
    if answer is None:
        return CheckResult(passed=False, reason="no final answer found")
    if _normalise(answer) == _normalise(str(spec["reference"])):
        return CheckResult(passed=True, reason="matches the reference")
    return CheckResult(passed=False, reason=f"{answer!r} differs from the reference")


def _numeric(spec: dict[str, Any], text: str) -> CheckResult:
    answer = _final(text)
    try:
        value = float((answer or "").replace(",", ""))
    except ValueError:
        return CheckResult(passed=False, reason=f"not a number: {answer!r}")
    reference = float(spec["reference"])
    tolerance = float(spec.get("tolerance", 1e-6 * max(1.0, abs(reference))))
    if math.isfinite(value) and abs(value - reference) <= tolerance:
        return CheckResult(passed=True, reason=f"{value:g} within {tolerance:g} of the reference")
    return CheckResult(
        passed=False, reason=f"{value:g} is not within {tolerance:g} of {reference:g}"
    )


VERIFIERS: dict[str, Callable[[dict[str, Any], str], CheckResult]] = {
    "reasoning_gym": _reasoning_gym,
    "mcq": _mcq,
    "exact": _exact,
    "numeric": _numeric,
}


def _spec(spec: dict[str, Any] | str) -> dict[str, Any]:
    return json.loads(spec) if isinstance(spec, str) else spec


def has_verifier(spec: dict[str, Any] | str) -> bool:
    return _spec(spec).get("kind") in VERIFIERS


def check(spec: dict[str, Any] | str, answer_text: str) -> CheckResult:
    """Whether answer_text (a full response or a bare answer) passes the spec, and why."""
    spec = _spec(spec)
    verifier = VERIFIERS.get(spec.get("kind"))  # type: ignore[arg-type]
    if verifier is None:
        return CheckResult(passed=False, reason=f"no verifier for kind {spec.get('kind')!r}")
    try:
        return verifier(spec, answer_text)
    except (KeyError, TypeError, ValueError) as exc:
        return CheckResult(passed=False, reason=f"bad {spec.get('kind')} spec: {exc}")
