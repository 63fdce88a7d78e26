"""Constraint predicates: checks of the form a puzzle states ("a 10-word sentence whose n-th word
has n letters"), applied to the final answer.

A spec: {"kind": "constraint", "rules": [{"rule": NAME, ...parameters}, ...]}; every rule must
hold. Words are runs of letters, digits, apostrophes and hyphens; punctuation is not part of a
word's length.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# How a judge is told that any answer meeting the rules is right (see verify/judge.py).
RULES_PREFIX = "Any answer that meets every one of these rules is correct. Rules:"
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def _letters(word: str) -> int:
    return sum(c.isalnum() for c in word)


def _word_count(text: str, p: dict[str, Any]) -> str | None:
    n = len(words(text))
    if "equals" in p and n != p["equals"]:
        return f"has {n} words, not {p['equals']}"
    if "min" in p and n < p["min"]:
        return f"has {n} words, fewer than {p['min']}"
    if "max" in p and n > p["max"]:
        return f"has {n} words, more than {p['max']}"
    return None


def _nth_word_has_n_letters(text: str, p: dict[str, Any]) -> str | None:
    for i, word in enumerate(words(text), start=1):
        if _letters(word) != i:
            return f"word {i} ({word!r}) has {_letters(word)} letters, not {i}"
    return None


def _word_lengths(text: str, p: dict[str, Any]) -> str | None:
    lengths = [_letters(w) for w in words(text)]
    if lengths != list(p["lengths"]):
        return f"word lengths are {lengths}, not {list(p['lengths'])}"
    return None


def _letter_pattern(text: str, p: dict[str, Any]) -> str | None:
    """Every word matches a regular expression (e.g. starts with the same letter: "^[sS]")."""
    for word in words(text):
        if not re.search(p["pattern"], word):
            return f"word {word!r} does not match {p['pattern']!r}"
    return None


def _must_include(text: str, p: dict[str, Any]) -> str | None:
    present = {w.casefold() for w in words(text)}
    missing = [w for w in p["words"] if w.casefold() not in present]
    return f"missing {missing}" if missing else None


def _must_avoid(text: str, p: dict[str, Any]) -> str | None:
    present = {w.casefold() for w in words(text)}
    found = [w for w in p["words"] if w.casefold() in present]
    letters = [c for c in p.get("letters", []) if c.casefold() in text.casefold()]
    if found or letters:
        return f"contains {found + letters}"
    return None


RULES: dict[str, Callable[[str, dict[str, Any]], str | None]] = {
    "word_count": _word_count,
    "nth_word_has_n_letters": _nth_word_has_n_letters,
    "word_lengths": _word_lengths,
    "letter_pattern": _letter_pattern,
    "must_include": _must_include,
    "must_avoid": _must_avoid,
}


def broken_rules(text: str, rules: list[dict[str, Any]]) -> list[str]:
    """Why the text breaks each rule it breaks (empty when all hold); KeyError on unknown rules."""
    out = []
    for rule in rules:
        problem = RULES[rule["rule"]](text, rule)
        if problem:
            out.append(f"{rule['rule']}: {problem}")
    return out
