"""What goes into and comes out of a model call, independent of the provider."""

from __future__ import annotations

from pydantic import BaseModel

# Normalised stop reasons: "stop" (finished), "max_tokens" (truncated), "refusal".
STOP, MAX_TOKENS, REFUSAL = "stop", "max_tokens", "refusal"


class Completion(BaseModel):
    text: str
    stop_reason: str
    tokens_in: int
    tokens_out: int
    model: str
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False


class RetryableError(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection); retry_after from the provider."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class ContextLimitError(Exception):
    """The conversation no longer fits the model's context window."""
