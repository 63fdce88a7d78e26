"""How a question that did not come with a scorer is checked: its answer type becomes a
verification spec (the verifier registry of raspberry.verify says which kind makes it), and the
reference answer must pass that spec itself.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

from raspberry.verify import check
from raspberry.verify.checks import JUDGED, answer_types, verifiers


def spec_for(
    answer_type: str, reference: str, rules: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    if answer_type == JUDGED:
        return {"kind": JUDGED, "reference": reference.strip()}
    return answer_types()[answer_type](reference, rules or [])


def known_answer_type(answer_type: str) -> str:
    """The answer type, if a registered verifier (or the judge) makes its spec."""
    known = sorted([*answer_types(), JUDGED])
    if answer_type not in known:
        raise ValueError(f"unknown answer type {answer_type!r}; known: {known}")
    return answer_type


# An answer type a registered verifier makes a spec of (or the judge's), checked when read.
AnswerType = Annotated[str, AfterValidator(known_answer_type)]


def spec_problem(spec: Any, reference: str) -> str | None:
    """Why the spec cannot check answers to this question, or None when it can."""
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        return 'the verification is not a JSON object with a "kind"'
    kind = spec["kind"]
    if kind == JUDGED:
        return None if reference.strip() else "a judged question needs a reference answer"
    verifier = verifiers().get(kind)
    if verifier is None:
        return f"unknown verification kind {kind!r}"
    if problem := verifier.problem(spec):
        return problem
    if not verifier.self_checked:
        return None  # its reference is not an answer in the spec's own terms
    result = check(spec, f"Final answer: {reference}")
    return None if result.passed else f"the reference answer fails its own check ({result.reason})"


def spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True)
