"""Pull the final answer out of a model's text, tolerating common formatting."""

from __future__ import annotations

import re

_FINAL = re.compile(r"final\s+answer\s*[:：]\s*(.+)", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{")


def _unbox(text: str) -> str | None:
    """Content of the last \\boxed{...}, braces balanced."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def _clean(answer: str) -> str:
    answer = answer.strip()
    boxed = _unbox(answer)
    if boxed is not None:
        answer = boxed
    answer = answer.strip().strip("*_`").strip().rstrip(".。!").strip()
    answer = re.sub(r"^\$+|\$+$", "", answer).strip()
    return answer.rstrip(".。!").strip()


def extract_final_answer(text: str) -> str | None:
    """The answer on the last `Final answer:` line, else the last \\boxed{...}, else None."""
    for line in reversed(text.strip().splitlines()):
        match = _FINAL.search(line.replace("**", ""))
        if match:
            answer = _clean(match.group(1))
            return answer or None
    boxed = _unbox(text)
    return _clean(boxed) if boxed is not None and boxed.strip() else None
