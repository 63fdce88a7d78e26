"""The simulated embeddings model: deterministic vectors that place a rewording near its original.

A text's vector is the sum of one fixed random direction per content word (number words read as
digits, stop words left out, crude stems), normalised: two wordings of one problem share most of
their content words and so point the same way, unrelated texts are nearly orthogonal, and a
template asked with other numbers or names lands in between, where a real embedder puts it too.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Any

import numpy as np

from raspberry.stages.candidates.semantic import STOP, stem, tokens

DIMENSIONS = 64
# Words a real embedder knows to mean the same, beyond the duplicate pass's own short list: what
# lets the simulated one find rewordings that the pass's word overlap misses.
SYNONYMS = {
    "automobile": "car", "vehicle": "car", "seller": "dealer", "daytime": "day",
    "look": "appear", "seem": "appear", "kid": "child", "youngster": "child",
    "sold": "sell", "get": "",
}  # fmt: skip


@lru_cache(maxsize=65536)
def _direction(word: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIMENSIONS)


def embed(text: str) -> list[float]:
    words = [t.lower() for t in tokens(text)]
    content = {SYNONYMS.get(stem(w), stem(w)) for w in words if w not in STOP and len(w) > 1}
    content = (content - {""}) or set(words) or {""}
    v = sum((_direction(w) for w in sorted(content)), np.zeros(DIMENSIONS))
    return (v / (np.linalg.norm(v) or 1.0)).round(6).tolist()


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI embeddings response; KeyError/TypeError/ValueError for a malformed body."""
    inputs = body["input"]
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("input must be a string or a list of strings")
    used = sum(max(1, len(t) // 4) for t in texts)  # as the chat endpoints count
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)
        ],
        "model": body["model"],
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }
