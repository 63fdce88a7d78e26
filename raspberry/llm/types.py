"""What goes into and comes out of a model call, independent of the provider."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

from raspberry.llm.rate_headers import RateLimitInfo

# Normalised stop reasons: "stop" (finished), "max_tokens" (truncated), "refusal".
STOP, MAX_TOKENS, REFUSAL = "stop", "max_tokens", "refusal"


@dataclass(frozen=True)
class Request:
    """One model call, as the gateway, the batcher and the providers pass it on."""

    model: str
    system: str | None
    messages: list[dict[str, str]]
    params: dict[str, Any]
    sample_index: int = 0
    prompt_ref: str = ""  # the prompt it renders, id@version (its text is in the messages)

    def tokens_estimate(self) -> int:
        """Input tokens, roughly (4 characters each), to book against token-per-minute limits."""
        chars = len(self.system or "") + sum(len(m["content"]) for m in self.messages)
        return chars // 4 + 1


class Completion(BaseModel):
    text: str
    stop_reason: str
    tokens_in: int  # all input tokens, those read from or written to the prompt cache included
    tokens_out: int
    tokens_cache_read: int = 0  # input tokens read from the provider's prompt cache
    tokens_cache_write: int = 0  # input tokens written to it (Anthropic charges them extra)
    # The model's own reasoning where the API returns it (Anthropic thinking blocks, an
    # OpenAI-compatible server's reasoning_content), and its tokens, counted in tokens_out.
    thinking: str = ""
    tokens_thinking: int = 0
    model: str
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False  # served from Raspberry's request cache
    batch: bool = False  # answered through a provider's batch API
    # From a batch an earlier process submitted and died waiting for: its answer settles the
    # line booked, unconfirmed, when that process was found dead (books.py).
    reattached: bool = False
    # An embeddings request's vector (float32, little-endian, base64): compact in the cache.
    vector: str = ""


class RetryableError(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection); retry_after from the provider."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        status: int | None = None,
        limits: RateLimitInfo | None = None,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.limits = limits


class ContextLimitError(Exception):
    """The conversation no longer fits the model's context window."""


@dataclass
class GatewayStats:
    """What one gateway did: its counters, which the progress board adds up."""

    requests_sent: int = 0
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cache_read: int = 0
    tokens_cache_write: int = 0
    tokens_thinking: int = 0
    cost_usd: float = 0.0
    in_flight: int = 0
    # Waits for a rate-limit slot: how many, and their total in seconds.
    waits: int = 0
    wait_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
