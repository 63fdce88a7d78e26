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
        self, name: str, kind: str, base_url: str | None, api_key: str | None, timeout_s: float
    ):
        self.name, self.kind = name, kind
        self._secrets = [api_key] if api_key else []
        key = api_key or "no-key"  # local servers take any key; the SDKs insist on one
        if kind == "anthropic":
            self._client: Any = anthropic.AsyncAnthropic(
                api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s
            )
            self._errors: Any = anthropic
        else:
            url = (
                f"{base_url.rstrip('/')}/v1"
                if base_url and not base_url.rstrip("/").endswith("/v1")
                else base_url
            )
            self._client = openai.AsyncOpenAI(
                api_key=key, base_url=url, max_retries=0, timeout=timeout_s
            )
            self._errors = openai

    async def complete(
        self,
        model: str,
        system: str | None,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        sample_index: int,
    ) -> Completion:
        if self.kind == "anthropic":
            pending = self._anthropic(model, system, messages, params)
        else:
            pending = self._openai(model, system, messages, params, sample_index)
        started = time.monotonic()
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
        self, model: str, system: str | None, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> Completion:
        extra = {"system": system} if system else {}
        sampling = {k: v for k, v in params.items() if k != "max_tokens"}
        # Recent anthropic SDKs no longer take sampling arguments; the API body still may.
        resp = await self._client.messages.create(
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
        resp = await self._client.chat.completions.create(
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
        await self._client.close()
