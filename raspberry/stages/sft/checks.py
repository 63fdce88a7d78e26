"""Checks on a rewritten monologue. Each failure comes back as a short reason."""

from __future__ import annotations

import re

from raspberry.build_files.records import Dialogue
from raspberry.verify import check

_TALK_OF_USER = re.compile(r"\b(the user|the tutor|you said|your feedback|your hint)\b", re.I)
_SELF_CORRECTION = re.compile(
    r"\b(wait|let me (?:check|re-?check|look|go back)|that does not look right|"
    r"that's not right|i made a mistake|on second thought|hmm)\b",
    re.I,
)
NGRAM = 8  # a shared run of this many words means a nudge was copied in


def retention(monologue: str, dialogue: Dialogue) -> float:
    original = sum(len(t.content) for t in dialogue.turns if t.role == "assistant")
    return len(monologue) / original if original else 0.0


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def leaked_nudge(monologue: str, dialogue: Dialogue) -> str | None:
    """Why the monologue shows the user's nudges, or None."""
    if match := _TALK_OF_USER.search(monologue):
        return f"talks of the user ({match.group(0)!r})"
    ours = _ngrams(monologue, NGRAM)
    for turn in dialogue.turns[1:]:
        if turn.role == "user" and ours & _ngrams(turn.content, NGRAM):
            return f"copies a nudge ({NGRAM}-word run shared with a user turn)"
    return None


def check_rewrite(
    monologue: str, dialogue: Dialogue, verification: str, min_retention: float
) -> list[str]:
    """Reasons the monologue fails, each "category: detail"; empty when it passes every check."""
    failures: list[str] = []
    kept = retention(monologue, dialogue)
    if kept < min_retention:
        failures.append(f"length retention: {kept:.2f} < {min_retention:.2f}")
    if leak := leaked_nudge(monologue, dialogue):
        failures.append(f"nudge leaked: {leak}")
    wrong_attempts = dialogue.attempts - 1
    corrections = len(_SELF_CORRECTION.findall(monologue))
    if corrections < wrong_attempts:
        failures.append(
            f"mistakes dropped: {corrections} self-corrections for {wrong_attempts} wrong attempts"
        )
    verdict = check(verification, monologue)
    if not verdict.passed:
        failures.append(f"final answer: {verdict.reason}")
    return failures
