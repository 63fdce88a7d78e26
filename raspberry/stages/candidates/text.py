"""Question text as words and word n-grams: the one normalisation that exact dedup, near-duplicate
detection and decontamination share.

Normalised text is lower case without sentence punctuation. Digits and symbols such as + - * / =
are kept as words of their own: "5 - 3" and "5 + 3" are different questions.
"""

from __future__ import annotations

import hashlib
import re

_PUNCTUATION = re.compile(r"[.,;:!?'\"“”‘’()\[\]{}]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return _TOKEN.findall(_PUNCTUATION.sub(" ", text.casefold()))


def normalised(text: str) -> str:
    return " ".join(words(text))


def text_key(text: str) -> str:
    """Equal for texts that differ only in case, spacing and punctuation."""
    return hashlib.sha1(normalised(text).encode()).hexdigest()


def ngrams(tokens: list[str], n: int) -> set[str]:
    """Word n-grams; a text shorter than n words is one n-gram of its own."""
    if len(tokens) < n:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def question_id(prompt: str) -> str:
    """A question's id: the hash of its text, so the same question has the same id everywhere."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]
