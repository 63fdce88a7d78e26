"""Rate limits per (provider, model): token buckets, header parsing, adaptive concurrency, breaker.

The rules are here (RateLimits); the buckets live in the gateway's state database, shared by
every process using it (shared_limits.py, one transaction per change). `reserve` books capacity
and returns how long the caller must sleep before sending, which any event loop can do. Limits
are expressed per minute, as providers publish them, and spent at a steady per-second rate with
a small burst, because providers enforce them over windows much shorter than a minute.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

# Spend at most this share of a published limit: a per-second window must never see one too many.
HEADROOM = 0.99
# Burst allowed after idleness, in seconds of the limit's rate.
BURST_S = 0.02
# Kinds of budget: requests, input tokens, output tokens, and tokens of either kind (OpenAI).
KINDS = ("requests", "input_tokens", "output_tokens", "tokens")


class Bucket:
    """A token bucket refilled at per_minute/60 per second; reservations may run it into debt."""

    def __init__(self, per_minute: float, now: float | None = None):
        self.per_minute = 0.0
        self.rate = 1.0
        self.capacity = 1.0
        self.level = 0.0
        self.stamp = time.monotonic() if now is None else now
        self.set_limit(per_minute)
        self.level = self.capacity

    def set_limit(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0 * HEADROOM
        self.capacity = max(1.0, self.rate * BURST_S)

    def _refill(self, now: float) -> None:
        if now > self.stamp:  # a paused bucket's stamp lies in the future: nothing refills yet
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def reserve(self, amount: float, now: float) -> float:
        """Book `amount`; seconds to wait before it may be spent (0 when available now)."""
        self._refill(now)
        self.level -= amount
        return max(0.0, self.stamp - now) + max(0.0, -self.level / self.rate)

    def pause_until(self, until: float, now: float) -> None:
        """Nothing more until `until`, then the usual rate: requests queued during a pause
        leave spread out, not all at once. Bookings that already reach past `until` stand."""
        self._refill(now)
        free_at = self.stamp + max(0.0, -self.level) / self.rate
        if free_at < until:
            self.stamp, self.level = until, 0.0


@dataclass
class ModelLimits:
    """The buckets of one (provider, model), the pause ordered by a 429, and what was learnt."""

    buckets: dict[str, Bucket] = field(default_factory=dict)
    paused_until: float = 0.0
    paused_at: float = 0.0  # when the last pause was ordered
    learnt: set[str] = field(default_factory=set)  # kinds whose limit came from the headers
    # The AIMD share of every gate's ceiling that its processes may use at once: cut by 30% on a
    # burst of 429s (one cut per CUT_EVERY_S, whichever process saw them), regrown by successes.
    factor: float = 1.0
    cut_at: float = 0.0


class RateLimits:
    """The (provider, model) limits: the rules, over a store of ModelLimits that subclasses
    give (`_limits`: a context in which the one limit may be read and changed)."""

    CUT, CUT_EVERY_S = 0.7, 1.0

    def __init__(self) -> None:
        # What this process last saw of each limit: per kind of bucket, the limit learnt from
        # the headers (None: configured). It spares a store a transaction that changes nothing.
        self._kinds: dict[tuple[str, str], dict[str, float | None]] = {}
        self._factors: dict[tuple[str, str], float] = {}
        # Successes not yet added to the shared factor: (count, the gate's ceiling).
        self._successes: dict[tuple[str, str], tuple[int, int]] = {}
        self._successes_lock = threading.Lock()

    def clock(self) -> float:
        return time.monotonic()

    def _limits(self, key: tuple[str, str]) -> AbstractContextManager[ModelLimits]:
        raise NotImplementedError

    def seed(self, key: tuple[str, str], per_minute: Mapping[str, float | None]) -> None:
        """Limits from config; a limit already learnt from the provider's headers is kept."""
        with self._limits(key) as limits:
            for kind, value in per_minute.items():
                if value and kind not in limits.learnt and kind not in limits.buckets:
                    limits.buckets[kind] = Bucket(value, self.clock())

    def reserve(self, key: tuple[str, str], input_tokens: int) -> float:
        """Book one request and its input tokens; seconds to wait before sending. The successes
        since the last booking regrow the shared concurrency factor in the same transaction."""
        with self._successes_lock:
            n, ceiling = self._successes.pop(key, (0, 1))
        with self._limits(key) as limits:
            if n and limits.factor < 1.0:
                # Additive increase, as the gate's: +1/limit slots per success, in shares.
                limits.factor = min(1.0, math.sqrt(limits.factor**2 + 2 * n / ceiling**2))
            return self._reserve(limits, input_tokens, self.clock())

    def succeeded(self, key: tuple[str, str], ceiling: int) -> None:
        """A request answered: counted now, added to the factor at the next booking."""
        with self._successes_lock:
            n, _ = self._successes.get(key, (0, ceiling))
            self._successes[key] = (n + 1, ceiling)

    def cut(self, key: tuple[str, str]) -> float:
        """A 429: the factor cut for every process (once per burst); the new factor."""
        now = self.clock()
        with self._limits(key) as limits:
            if now - limits.cut_at >= self.CUT_EVERY_S:
                limits.factor = max(0.01, limits.factor * self.CUT)
                limits.cut_at = now
            return limits.factor

    def factor(self, key: tuple[str, str]) -> float:
        """The shared factor as this process last saw it (1.0: no cut yet)."""
        return self._factors.get(key, 1.0)

    def rebook(self, key: tuple[str, str], input_tokens: int, booked_at: float) -> float:
        """For a request that waited out a booking made at `booked_at` (on this clock): when a
        429 ordered a pause since, a new booking after it (seconds to wait); else 0. Without
        this, requests booked before a 429 would all still leave at their times, into the
        exhausted limit."""
        now = self.clock()
        with self._limits(key) as limits:
            if limits.paused_at > booked_at and limits.paused_until > now:
                return self._reserve(limits, input_tokens, now)
            return 0.0

    @staticmethod
    def _reserve(limits: ModelLimits, input_tokens: int, now: float) -> float:
        wait = 0.0
        if limits.paused_until > now and "requests" not in limits.buckets:
            # No known rate to spread the queued requests by: spread them at random.
            wait = (limits.paused_until - now) * random.uniform(1.0, 1.5)
        # Output tokens are booked after the answer (spend_output): only their debt counts.
        amounts = {"requests": 1, "input_tokens": input_tokens, "tokens": input_tokens}
        for kind, bucket in limits.buckets.items():
            wait = max(wait, bucket.reserve(amounts.get(kind, 0), now))
        return wait

    def spend_output(self, key: tuple[str, str], output_tokens: int) -> None:
        """Output tokens are known only afterwards: they are charged as debt on later requests."""
        if not self._may_have(key, ("output_tokens", "tokens")):
            return
        with self._limits(key) as limits:
            for kind in ("output_tokens", "tokens"):
                if kind in limits.buckets:
                    limits.buckets[kind].reserve(output_tokens, self.clock())

    def pause(self, key: tuple[str, str], seconds: float) -> None:
        """Hold every request to this model for `seconds` (a 429's Retry-After)."""
        with self._limits(key) as limits:
            self._pause(limits, seconds, self.clock())

    @staticmethod
    def _pause(limits: ModelLimits, seconds: float, now: float) -> None:
        limits.paused_until = max(limits.paused_until, now + seconds)
        limits.paused_at = now
        for bucket in limits.buckets.values():
            bucket.pause_until(limits.paused_until, now)

    def learn(self, key: tuple[str, str], info: RateLimitInfo) -> None:
        """Keep the buckets current with what the provider says its limits are."""
        if not info.exhausted_for and self._known(key, info.limits):
            return
        with self._limits(key) as limits:
            for kind, value in info.limits.items():
                if kind in limits.learnt and limits.buckets[kind].per_minute == value:
                    continue
                limits.learnt.add(kind)
                if kind in limits.buckets:
                    limits.buckets[kind].set_limit(value)
                else:
                    limits.buckets[kind] = Bucket(value, self.clock())
            if info.exhausted_for:
                self._pause(limits, info.exhausted_for, self.clock())

    def sharing(self, key: tuple[str, str]) -> int:
        """How many processes use this limit now (1: this one alone)."""
        return 1

    def _seen(self, key: tuple[str, str], limits: ModelLimits) -> None:
        self._factors[key] = limits.factor
        self._kinds[key] = {
            kind: b.per_minute if kind in limits.learnt else None
            for kind, b in limits.buckets.items()
        }

    def _may_have(self, key: tuple[str, str], kinds: tuple[str, ...]) -> bool:
        known = self._kinds.get(key)
        return known is None or any(k in known for k in kinds)

    def _known(self, key: tuple[str, str], learnt: dict[str, float]) -> bool:
        known = self._kinds.get(key)
        return known is not None and all(known.get(k) == v for k, v in learnt.items())


# --- Response headers ------------------------------------------------------------------------


@dataclass
class RateLimitInfo:
    """What one response's headers say: per-minute limits, and how long until an exhausted one
    has room for one more request (0 when none is exhausted)."""

    limits: dict[str, float] = field(default_factory=dict)
    exhausted_for: float = 0.0


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_OPENAI_KINDS = {"requests": "requests", "tokens": "tokens"}
_ANTHROPIC_KINDS = {
    "requests": "requests",
    "input-tokens": "input_tokens",
    "output-tokens": "output_tokens",
    "tokens": "tokens",
}


def parse_duration(text: str) -> float | None:
    """OpenAI's reset format: '1s', '6m0s', '20ms', '1h2m3.5s'; None if unreadable."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * _SCALE[u] for n, u in parts)


def _until(timestamp: str, now: float) -> float | None:
    """Seconds from now until an RFC 3339 time (Anthropic's reset format)."""
    try:
        return max(0.0, datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() - now)
    except ValueError:
        return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def parse_rate_headers(kind: str, headers: Mapping[str, str], now: float) -> RateLimitInfo:
    """Rate-limit headers of an OpenAI (x-ratelimit-*) or Anthropic (anthropic-ratelimit-*)
    response; `now` is the wall-clock time, for Anthropic's absolute reset times."""
    if kind == "anthropic":
        kinds, header = _ANTHROPIC_KINDS, "anthropic-ratelimit-{kind}-{field}"
        reset_in: Callable[[str], float | None] = functools.partial(_until, now=now)
    else:
        kinds, header, reset_in = _OPENAI_KINDS, "x-ratelimit-{field}-{kind}", parse_duration
    info = RateLimitInfo()
    for name, budget in kinds.items():
        limit = _number(headers.get(header.format(kind=name, field="limit")))
        if limit:
            info.limits[budget] = limit
        if _number(headers.get(header.format(kind=name, field="remaining"))) == 0:
            reset = reset_in(headers.get(header.format(kind=name, field="reset"), "")) or 0.0
            # Providers replenish continuously: a slot frees after the reset's share of one
            # request, not after the whole reset; the bucket paces what follows at the limit.
            info.exhausted_for = max(info.exhausted_for, reset / limit if limit else reset)
    return info


# --- Adaptive concurrency ----------------------------------------------------------------------


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
