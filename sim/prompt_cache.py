"""Providers' prompt caching, simulated as their docs describe it, so the usage blocks report
cache reads and writes as the real APIs do.

Anthropic caches the prefix up to each `cache_control` breakpoint (system prompt, messages) and
reads the longest cached prefix that ends at a block at or before the last breakpoint; what lies
between that and the last breakpoint is written. OpenAI caches every prompt automatically, in
128-token steps from the minimum length, and reports the longest prefix seen before as
`cached_tokens`. A prefix shorter than the minimum is never cached; an entry lives five minutes
from its last use.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from raspberry.llm.cost import OPENAI_CACHE_STEP

TTL_S = 300.0
CHARS_PER_TOKEN = 4  # the simulator's token count (completions.tokens)


class PromptCache:
    def __init__(self, min_tokens: int, clock: Callable[[], float] = time.monotonic):
        self.min_tokens = min_tokens
        self._clock = clock
        self._expires: dict[str, float] = {}  # prefix digest -> when it leaves the cache

    def _hit(self, digest: str, now: float) -> bool:
        if self._expires.get(digest, 0.0) > now:
            self._expires[digest] = now + TTL_S  # a read refreshes the entry
            return True
        return False

    def _forget_expired(self, now: float) -> None:
        if len(self._expires) > 100_000:
            self._expires = {d: t for d, t in self._expires.items() if t > now}

    def anthropic(self, model: str, blocks: list[tuple[str, bool]]) -> tuple[int, int]:
        """(tokens read, tokens written) for a prompt of (text, has a breakpoint) blocks."""
        marks = [i for i, (_, marked) in enumerate(blocks) if marked]
        if not marks:
            return 0, 0
        now = self._clock()
        self._forget_expired(now)
        running = hashlib.sha256(model.encode())
        digests, lengths, chars = [], [], 0
        for text, _ in blocks[: marks[-1] + 1]:
            running.update(b"\x00" + text.encode())
            chars += len(text)
            digests.append(running.hexdigest())
            lengths.append(chars // CHARS_PER_TOKEN)
        last = marks[-1]
        read = next((lengths[i] for i in range(last, -1, -1) if self._hit(digests[i], now)), 0)
        written = 0
        for i in marks:
            if lengths[i] >= self.min_tokens and lengths[i] > read:
                self._expires[digests[i]] = now + TTL_S
                written = lengths[i] - read
        return read, written

    def openai(self, model: str, prompt: str) -> int:
        """Tokens of `prompt` read from the cache; every step of it is cached for next time."""
        total = len(prompt) // CHARS_PER_TOKEN
        if total < self.min_tokens:
            return 0
        now = self._clock()
        self._forget_expired(now)
        running = hashlib.sha256(model.encode())
        cached, done = 0, 0
        for step in range(self.min_tokens, total + 1, OPENAI_CACHE_STEP):
            end = step * CHARS_PER_TOKEN
            running.update(prompt[done:end].encode())
            done = end
            digest = running.hexdigest()
            if self._hit(digest, now):
                cached = step
            else:
                self._expires[digest] = now + TTL_S
        return cached
