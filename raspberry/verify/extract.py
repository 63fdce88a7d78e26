"""Pull the final answer out of a model's text, tolerating common formatting."""

from __future__ import annotations

import re

_FINAL = re.compile(r"final\s+answer\s*[:：]\s*(.+)", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{")


def _boxes(text: str) -> list[str]:
    """Contents of every \\boxed{...}, braces balanced."""
    found = []
    for match in _BOXED.finditer(text):
        depth = 1
        for i in range(match.end(), len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[match.end() : i])
                    break
    return found


def _unbox(text: str) -> str | None:
    """Content of the last \\boxed{...} of the last line that has one; None when that line
    boxes two different answers ("\\boxed{3} or \\boxed{4}" is a hedge, not an answer).
    An earlier line's box is an attempt the text went on to correct."""
    for line in reversed(text.splitlines()):
        boxes = _boxes(line)
        if boxes:
            return boxes[-1] if len({b.strip() for b in boxes}) == 1 else None
    return None


def _clean(answer: str) -> str:
    answer = answer.strip()
    if _boxes(answer):
        answer = _unbox(answer) or ""
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
