"""How the simulator enforces a requests-per-minute limit, in the three ways providers do.

- fixed: rpm/60 requests per wall-clock second, the count reset at each whole second.
- sliding: at most rpm/60 requests in any one-second window (the last second, continuously).
- bucket: a token bucket of rpm/60 requests' capacity, refilled continuously at rpm/60 a second.

Each reports what a provider's headers say under its rule: the limit per minute, what remains
now, and the time until the limit is whole again; a 429 carries the time until one request fits.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Literal

Mode = Literal["fixed", "sliding", "bucket"]
WINDOW_S = 1.0


class Limiter:
    def __init__(self, rpm: int | None, mode: Mode = "sliding"):
        self.per_second = max(1, rpm // 60) if rpm else None
        self.mode = mode
        self._window, self._used = 0, 0  # fixed
        self._sent: deque[float] = deque()  # sliding: when each request of the last window left
        self._level, self._stamp = float(self.per_second or 0), time.monotonic()  # bucket

    def admit(self) -> tuple[bool, float]:
        """(admitted, seconds until one request fits when not)."""
        if self.per_second is None:
            return True, 0.0
        remaining, _, one = self._state()
        if remaining >= 1:
            self._spend()
            return True, 0.0
        return False, one

    def _state(self) -> tuple[float, float, float]:
        """(requests that fit now, seconds until the limit is whole, seconds until one fits)."""
        assert self.per_second is not None
        if self.mode == "fixed":
            now = time.time()
            if int(now) != self._window:
                self._window, self._used = int(now), 0
            left = math.ceil(now) - now if self._used else 0.0
            return self.per_second - self._used, left, math.ceil(now) - now
        now = time.monotonic()
        if self.mode == "sliding":
            while self._sent and self._sent[0] <= now - WINDOW_S:
                self._sent.popleft()
            if not self._sent:
                return self.per_second, 0.0, 0.0
            whole = self._sent[-1] + WINDOW_S - now
            one = self._sent[0] + WINDOW_S - now if len(self._sent) >= self.per_second else 0.0
            return self.per_second - len(self._sent), whole, one
        rate = self.per_second / WINDOW_S
        self._level = min(float(self.per_second), self._level + (now - self._stamp) * rate)
        self._stamp = now
        return self._level, (self.per_second - self._level) / rate, max(0.0, 1 - self._level) / rate

    def _spend(self) -> None:
        if self.mode == "fixed":
            self._used += 1
        elif self.mode == "sliding":
            self._sent.append(time.monotonic())
        else:
            self._level -= 1

    def headers(self, style: str) -> dict[str, str]:
        if self.per_second is None:
            return {}
        remaining, whole, _ = self._state()
        limit, left = self.per_second * 60, max(0, math.floor(remaining))
        if style == "openai":
            return {
                "x-ratelimit-limit-requests": str(limit),
                "x-ratelimit-remaining-requests": str(left),
                "x-ratelimit-reset-requests": f"{max(whole, 0.001):.3f}s",
            }
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(time.time() + whole)))
        return {
            "anthropic-ratelimit-requests-limit": str(limit),
            "anthropic-ratelimit-requests-remaining": str(left),
            "anthropic-ratelimit-requests-reset": reset,
        }
