"""Token counts as OpenAI counts them, offline: bpe-openai has tiktoken's API and ships the
encodings (tiktoken itself downloads them on first use, which an offline machine cannot)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def encoding_of(name: str) -> Any:
    import bpe_openai

    return bpe_openai.get_encoding(name)


def count_tokens(messages: list[dict[str, Any]], encoding: str) -> int:
    """The cookbook's estimate: 3 tokens per message, its values' tokens, and 3 for the reply."""
    enc = encoding_of(encoding)
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            if isinstance(value, str):
                total += len(enc.encode(value))
            if key == "name":
                total += 1
    return total


def count_text(text: str, encoding: str) -> int:
    """The tokens of one text."""
    return len(encoding_of(encoding).encode(text))
