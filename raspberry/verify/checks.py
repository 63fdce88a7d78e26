"""Programmatic verifiers, chosen by the `kind` of a question's verification spec.

A spec is a JSON object: {"kind": "reasoning_gym", "task": NAME, "entry": {question, answer,
metadata}} scores with that task's own scorer, and only a score of 1.0 passes. {"kind": "judge"}
marks a question with no programmatic check: an LLM compares the answer with the reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel

from raspberry.verify.extract import extract_final_answer


class CheckResult(BaseModel):
    passed: bool
    reason: str


@cache
def _rg_scorer(task: str) -> Callable[[str, dict[str, Any]], float]:
    import reasoning_gym  # imported lazily: it takes a second and only this verifier needs it

    return reasoning_gym.get_score_answer_fn(task)


def _reasoning_gym(spec: dict[str, Any], answer: str) -> CheckResult:
    score = _rg_scorer(spec["task"])(answer, spec["entry"])
    if score == 1.0:
        return CheckResult(passed=True, reason="reasoning_gym score 1.0")
    return CheckResult(passed=False, reason=f"reasoning_gym score {score:g} (only 1.0 passes)")


VERIFIERS: dict[str, Callable[[dict[str, Any], str], CheckResult]] = {
    "reasoning_gym": _reasoning_gym,
}


def _spec(spec: dict[str, Any] | str) -> dict[str, Any]:
    return json.loads(spec) if isinstance(spec, str) else spec


def has_verifier(spec: dict[str, Any] | str) -> bool:
    return _spec(spec).get("kind") in VERIFIERS


def check(spec: dict[str, Any] | str, answer_text: str) -> CheckResult:
    """Whether answer_text (a full response or a bare answer) passes the spec, and why."""
    spec = _spec(spec)
    kind = spec.get("kind")
    verifier = VERIFIERS.get(kind)  # type: ignore[arg-type]
    if verifier is None:
        return CheckResult(passed=False, reason=f"no verifier for kind {kind!r}")
    answer = extract_final_answer(answer_text)
    if answer is None:
        # A bare answer with no "Final answer:" line is checked as it is.
        if "\n" in answer_text.strip() or not answer_text.strip():
            return CheckResult(passed=False, reason="no final answer found")
        answer = answer_text.strip()
    return verifier(spec, answer)
