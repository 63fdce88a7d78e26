"""Anthropic, OpenAI and OpenAI-compatible providers through the official SDKs.

The SDKs' own retries are off: the gateway owns retries. Errors are mapped to RetryableError,
ContextLimitError or ProviderError, with any secret scrubbed from the provider's message.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
import openai

from raspberry.errors import ProviderError
from raspberry.llm.types import (
    MAX_TOKENS,
    REFUSAL,
    STOP,
    Completion,
    ContextLimitError,
    RetryableError,
)

_STOP_REASONS = {
    "stop": STOP,
    "end_turn": STOP,
    "stop_sequence": STOP,
    "length": MAX_TOKENS,
    "max_tokens": MAX_TOKENS,
    "content_filter": REFUSAL,
    "refusal": REFUSAL,
}
POOL_SIZE = 25  # connections per SDK client; see Provider.__init__
_CONTEXT_WORDS = (
    "context length",
    "context window",
    "too long",
    "maximum context",
    "prompt is too long",
)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


class Provider:
    """One configured provider: an SDK client and the call that makes a Completion."""

    def __init__(
        self,
        name: str,
        kind: str,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        max_connections: int,
    ):
        self.name, self.kind = name, kind
        self._secrets = [api_key] if api_key else []
        sdk: Any = anthropic if kind == "anthropic" else openai
        self._errors = sdk
        if kind != "anthropic" and base_url and not base_url.rstrip("/").endswith("/v1"):
            base_url = f"{base_url.rstrip('/')}/v1"
        # The SDKs' HTTP pool scans all its connections for every request, so one pool serving
        # hundreds of requests in flight spends more CPU than the rest of the client. Several
        # clients with small pools, each request on the least loaded, keep that cost flat.
        count = -(-max_connections // POOL_SIZE)
        size = -(-max_connections // count)
        limits = type(sdk.DEFAULT_CONNECTION_LIMITS)(
            max_connections=size, max_keepalive_connections=size
        )
        client_type = anthropic.AsyncAnthropic if kind == "anthropic" else openai.AsyncOpenAI
        self._clients: list[Any] = [
            client_type(
                base_url=base_url,
                api_key=api_key or "no-key",  # local servers take any key; the SDKs want one
                max_retries=0,
                timeout=timeout_s,
                http_client=sdk.DefaultAsyncHttpxClient(limits=limits, timeout=timeout_s),
            )
            for _ in range(count)
        ]
        self._load = [0] * count

    async def complete(
        self,
        model: str,
        system: str | None,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        sample_index: int,
    ) -> Completion:
        slot = min(range(len(self._clients)), key=self._load.__getitem__)
        client = self._clients[slot]
        if self.kind == "anthropic":
            pending = self._anthropic(client, model, system, messages, params)
        else:
            pending = self._openai(client, model, system, messages, params, sample_index)
        started = time.monotonic()
        self._load[slot] += 1
        try:
            completion = await pending
        except self._errors.APIStatusError as exc:
            raise self._map_status(exc) from None
        except self._errors.APITimeoutError:
            raise RetryableError(f"{self.name}: request timed out") from None
        except self._errors.APIConnectionError as exc:
            raise RetryableError(
                f"{self.name}: connection error: {scrub(str(exc), self._secrets)}"
            ) from None
        finally:
            self._load[slot] -= 1
        completion.latency_s = time.monotonic() - started
        return completion

    def _map_status(self, exc: Any) -> Exception:
        status = exc.status_code
        message = scrub(str(getattr(exc, "message", exc)), self._secrets)
        if status == 429 or status >= 500:
            return RetryableError(
                f"{self.name}: HTTP {status}: {message}",
                retry_after=_retry_after(exc.response.headers),
                status=status,
            )
        if status == 400 and any(w in message.lower() for w in _CONTEXT_WORDS):
            return ContextLimitError(f"{self.name}: {message}")
        return ProviderError(f"{self.name}: HTTP {status}: {message}")

    async def _anthropic(
        self,
        client: Any,
        model: str,
        system: str | None,
        messages: list[dict[str, str]],
        params: dict[str, Any],
    ) -> Completion:
        extra = {"system": system} if system else {}
        sampling = {k: v for k, v in params.items() if k != "max_tokens"}
        # Recent anthropic SDKs no longer take sampling arguments; the API body still may.
        resp = await client.messages.create(
            model=model,
            messages=messages,
            max_tokens=params["max_tokens"],
            extra_body=sampling or None,
            **extra,
        )
        text = "".join(block.text for block in resp.content if getattr(block, "type", "") == "text")
        return Completion(
            text=text,
            stop_reason=_STOP_REASONS.get(resp.stop_reason or "", STOP),
            tokens_in=resp.usage.input_tokens,
            tokens_out=resp.usage.output_tokens,
            model=resp.model,
        )

    async def _openai(
        self,
        client: Any,
        model: str,
        system: str | None,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        sample_index: int,
    ) -> Completion:
        full = ([{"role": "system", "content": system}] if system else []) + messages
        if self.kind == "openai":
            # OpenAI's own API wants max_completion_tokens (reasoning models reject max_tokens).
            params = {
                ("max_completion_tokens" if k == "max_tokens" else k): v for k, v in params.items()
            }
        # The seed keeps distinct samples of one request distinct and reproducible where honoured.
        resp = await client.chat.completions.create(
            model=model, messages=full, seed=sample_index, **params
        )
        choice = resp.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        usage = resp.usage
        return Completion(
            text=choice.message.content or "",
            stop_reason=REFUSAL if refusal else _STOP_REASONS.get(choice.finish_reason or "", STOP),
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            model=resp.model,
        )

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
