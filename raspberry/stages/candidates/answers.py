"""How a question that did not come with a scorer is checked: its answer type becomes a
verification spec (see raspberry.verify), and the reference answer must pass that spec itself.
"""

from __future__ import annotations

import json
from typing import Any

from raspberry.verify import check
from raspberry.verify.checks import VERIFIERS
from raspberry.verify.constraints import RULES
from raspberry.verify.sandbox import limits_of

ANSWER_TYPES = ("numeric", "exact", "mcq", "math", "list", "unordered_list", "constraint", "judge")


def spec_for(
    answer_type: str, reference: str, rules: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    if answer_type == "constraint":
        return {"kind": "constraint", "rules": rules or []}
    if answer_type == "mcq":
        return {"kind": "mcq", "reference": reference.strip().strip("()").upper()}
    if answer_type in ("list", "unordered_list"):
        return {"kind": "list", "reference": reference.strip(), "ordered": answer_type == "list"}
    return {"kind": answer_type, "reference": reference.strip()}


def spec_problem(spec: Any, reference: str) -> str | None:
    """Why the spec cannot check answers to this question, or None when it can."""
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        return 'the verification is not a JSON object with a "kind"'
    kind = spec["kind"]
    if kind == "judge":
        return None if reference.strip() else "a judged question needs a reference answer"
    if kind not in VERIFIERS:
        return f"unknown verification kind {kind!r}"
    if kind == "constraint":
        rules = spec.get("rules")
        if not isinstance(rules, list) or not rules:
            return "a constraint question needs a non-empty list of rules"
        unknown = [
            r.get("rule") for r in rules if not isinstance(r, dict) or r.get("rule") not in RULES
        ]
        if unknown:
            return f"unknown constraint rules {unknown}; known: {sorted(RULES)}"
    if kind == "code":
        if not isinstance(spec.get("tests"), str) or not spec["tests"].strip():
            return 'a code question needs its tests as Python source in "tests"'
        try:
            limits_of(spec.get("limits", {}))
        except ValueError as exc:
            return f"bad code limits: {exc}"
        return None  # its reference is not an answer in the spec's own terms
    if kind == "reasoning_gym":
        return None  # its reference is not an answer in the spec's own terms
    result = check(spec, f"Final answer: {reference}")
    return None if result.passed else f"the reference answer fails its own check ({result.reason})"


def spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True)
