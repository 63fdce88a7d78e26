"""Rate limits per (provider, model): token buckets and the rules that book them (the headers
they learn from are read in rate_headers.py; concurrency and the breaker are gates.py's).

The rules are here (RateLimits); the buckets live in the gateway's state database, shared by
every process using it (shared_limits.py, one transaction per change). `reserve` books capacity
and returns how long the caller must sleep before sending, which any event loop can do. Limits
are expressed per minute, as providers publish them, and spent at a steady per-second rate with
a small burst, because providers enforce them over windows much shorter than a minute.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from raspberry.llm.rate_headers import RateLimitInfo

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
        self.booked = 0.0  # what reserve() took since its owner last said (shared_limits.py)
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
        self.booked += amount
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
        self._pauses: dict[tuple[str, str], tuple[float, float]] = {}  # (until, since when)
        # Successes not yet added to the shared factor: (count, the gate's ceiling).
        self._successes: dict[tuple[str, str], tuple[int, int]] = {}
        self._successes_lock = threading.Lock()

    def clock(self) -> float:
        return time.monotonic()

    def _limits(
        self, key: tuple[str, str], exact: bool = False
    ) -> AbstractContextManager[ModelLimits]:
        """exact: what other processes must see at once (a pause, a cut, a limit learnt);
        else a store may keep the change a moment before it shares it."""
        raise NotImplementedError

    def seed(self, key: tuple[str, str], per_minute: Mapping[str, float | None]) -> None:
        """Limits from config; a limit already learnt from the provider's headers is kept."""
        with self._limits(key, exact=True) as limits:
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
        with self._limits(key, exact=True) as limits:
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
        # The pause as this process last saw it (every booking reads it): a look that costs no
        # transaction; a pause ordered elsewhere since shows at this process's next booking.
        until, at = self._pauses.get(key, (0.0, 0.0))
        if not (at > booked_at and until > self.clock()):
            return 0.0
        with self._limits(key) as limits:
            now = self.clock()
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
        with self._limits(key, exact=True) as limits:
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
        with self._limits(key, exact=True) as limits:
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
        self._pauses[key] = (limits.paused_until, limits.paused_at)
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
