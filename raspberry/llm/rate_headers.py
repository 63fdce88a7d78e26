"""What a provider's response headers say about its rate limits: OpenAI's x-ratelimit-* and
Anthropic's anthropic-ratelimit-*, read into per-minute limits and the wait an exhausted one
asks for."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


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
