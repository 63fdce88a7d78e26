"""The chosen letter of a multiple-choice answer (A-F), or None when there is none or several.

Accepted: `Final Answer: C`, `final answer: (c)`, `**C**`, `Final answer: C) Paris`. Two letters
("C and D", "C, D", "C/D", "(C) but maybe (D)") are no answer: a model may not hedge its way to
a pass.
"""

from __future__ import annotations

import re

_FINAL = re.compile(r"final\s+answer\s*(?:is)?\s*[:：]?\s*(.*)", re.IGNORECASE)
_LEADING = re.compile(r"^\(?([A-Fa-f])\)?(?=$|[\s.):,;/])")
_ANOTHER = re.compile(r"(?:\b(?:and|or)\b|[,/&+])\s*\(?([A-Fa-f])\)?(?![A-Za-z])")
# A second letter offered after the first: "(C) but maybe (D)", "C, or possibly D".
_HEDGED = re.compile(
    r"\(([A-Fa-f])\)|\b(?i:maybe|perhaps|possibly|probably|either|otherwise|unless)\b"
    r"[\s,:]*(?:\w+\s+){0,2}?\(?([A-F])\)?(?![A-Za-z])"
)
_MARKED = re.compile(
    r"\(([A-Fa-f])\)|(?<![A-Za-z'])([A-F])(?=\))|(?<![A-Za-z'])([A-F])(?![A-Za-z'])"
)


def _clean(text: str) -> str:
    text = re.sub(r"\\boxed\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\text\s*\{([^{}]*)\}", r"\1", text)
    return text.replace("*", "").replace("_", "").replace("$", "").replace("`", "").strip()


def _choice(segment: str) -> str | None:
    segment = _clean(segment)
    if not segment:
        return None
    lead = _LEADING.match(segment)
    if lead:
        rest = segment[lead.end() :]
        others = {m.group(1).upper() for m in _ANOTHER.finditer(rest)}
        others |= {next(g for g in m.groups() if g).upper() for m in _HEDGED.finditer(rest)}
        others -= {lead.group(1).upper()}
        return None if others else lead.group(1).upper()
    letters = {next(g for g in m.groups() if g).upper() for m in _MARKED.finditer(segment)}
    return letters.pop() if len(letters) == 1 else None


def extract_choice(text: str) -> str | None:
    """The letter after the last 'Final answer', else a last line that is only a letter."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        match = _FINAL.search(_clean(line))
        if match:
            return _choice(match.group(1))
    if lines and re.fullmatch(r"\(?[A-Fa-f]\)?\.?", _clean(lines[-1])):
        return _choice(lines[-1])
    return None
