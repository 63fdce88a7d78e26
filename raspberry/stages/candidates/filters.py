"""Format rules a question must meet on its own, before any duplicate pass or paid check."""

from __future__ import annotations

import re

from raspberry.stages.candidates.config import FiltersConfig

# "see Figure 2", "the diagram below", "shown in the table above": the question needs a picture.
_FIGURE = re.compile(
    r"\b(?:(?:figure|diagram|image|picture|graph|chart|table)\b|fig\.)\s*"
    r"(?:\d+|above|below|shown|shows)|\b(?:shown|pictured|depicted)\s+(?:above|below)\b",
    re.I,
)
# Sub-questions "(a) ... (b) ...", "a) ... b) ..." or "Part 1 ... Part 2". Options of a
# multiple-choice question are capital letters "A) ...", which are one question.
_PART = re.compile(
    r"(?:^|(?<=[\s:;.?]))\(([a-h]|i{1,3}|iv)\)\s"
    r"|^\s*([a-h])\)\s"
    r"|(?:^\s*|(?<=[.?!;:]\s))part\s+([a-d1-4])\b",
    re.M | re.I,
)


def _parts(text: str) -> int:
    labels = {
        (m.group(1) or m.group(2) or m.group(3)).lower()
        for m in _PART.finditer(text)
        # Keep option lists: "A) ..." in capitals at a line start is a choice, not a part.
        if not (m.group(2) and m.group(2).isupper())
    }
    return len(labels)


def format_problem(text: str, cfg: FiltersConfig) -> tuple[str, str] | None:
    """(reason, detail) when the question breaks a format rule, else None."""
    stripped = text.strip()
    if not stripped:
        return "empty", "no text"
    if len(stripped) < cfg.min_chars:
        return "too_short", f"{len(stripped)} characters, fewer than {cfg.min_chars}"
    if len(stripped) > cfg.max_chars:
        return "too_long", f"{len(stripped)} characters, more than {cfg.max_chars}"
    if cfg.drop_figure_references and (m := _FIGURE.search(stripped)):
        return "figure_reference", f"refers to {m.group(0)!r}"
    if cfg.drop_multi_part and _parts(stripped) >= 2:
        return "multi_part", f"{_parts(stripped)} sub-questions"
    return None
