"""Admission to a provider: its concurrency gate (slots shared by its models, an AIMD limit per
model, waiters served by priority) and its circuit breaker."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field


class Gate:
    """The concurrency slots of one provider, shared by its models: at most `ceiling` requests in
    flight (the provider's HTTP connections, so no admitted request waits for one inside the
    SDK), and per model an AIMD limit: cut to 70% on a burst of 429s, grown back by about one
    slot per window of successes. Waiters are served lowest priority number first, in arrival
    order among equals. One event loop only."""

    CUT = 0.7
    CUT_EVERY_S = 1.0  # one cut per burst of 429s, not one per 429

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.in_flight = 0
        self._models: dict[str, _ModelSlots] = {}
        self._arrivals = itertools.count()

    def model(self, name: str) -> _ModelSlots:
        if name not in self._models:
            self._models[name] = _ModelSlots(float(self.ceiling))
        return self._models[name]

    async def acquire(self, model: str, priority: int = 0) -> None:
        slots = self.model(model)
        if self.in_flight < self.ceiling and slots.has_room() and not slots.waiters:
            self._take(slots)
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(slots.waiters, (priority, next(self._arrivals), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(model)  # granted and cancelled at once: give the slot back
            raise

    def release(self, model: str) -> None:
        self.in_flight -= 1
        self._models[model].in_flight -= 1
        # The best waiter of any model with room goes next; a cancelled one is dropped.
        while self.in_flight < self.ceiling:
            ready = [s for s in self._models.values() if s.waiters and s.has_room()]
            if not ready:
                return
            slots = min(ready, key=lambda s: s.waiters[0][:2])
            waiter = heapq.heappop(slots.waiters)[2]
            if not waiter.done():
                self._take(slots)
                waiter.set_result(None)

    def _take(self, slots: _ModelSlots) -> None:
        self.in_flight += 1
        slots.in_flight += 1

    def rate_limited(self, model: str) -> None:
        slots, now = self.model(model), time.monotonic()
        if now - slots.last_cut >= self.CUT_EVERY_S:
            slots.limit = max(1.0, slots.limit * self.CUT)
            slots.last_cut = now

    def cap(self, model: str, factor: float) -> None:
        """At most `factor` of the ceiling: the share every process's gates may use now."""
        slots = self.model(model)
        slots.limit = min(slots.limit, max(1.0, factor * self.ceiling))

    def succeeded(self, model: str) -> None:
        slots = self.model(model)
        if slots.limit < self.ceiling:
            slots.limit = min(float(self.ceiling), slots.limit + 1.0 / slots.limit)


@dataclass
class _ModelSlots:
    limit: float
    in_flight: int = 0
    last_cut: float = 0.0
    waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)

    def has_room(self) -> bool:
        return self.in_flight < int(self.limit)


# --- Circuit breaker ---------------------------------------------------------------------------


class CircuitBreaker:
    """Opens after `threshold` failures in a row (not counting 429s); while open, calls fail at
    once; after `cooldown_s` one call is let through, and its success closes the breaker."""

    def __init__(self, threshold: int, cooldown_s: float):
        self.threshold, self.cooldown_s = threshold, cooldown_s
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error = ""
        self._probing = False

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if not self._probing and time.monotonic() - self.opened_at >= self.cooldown_s:
            self._probing = True
            return True
        return False

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        self._probing = False
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._probing = False
