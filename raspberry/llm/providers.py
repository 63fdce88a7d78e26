"""Anthropic, OpenAI and OpenAI-compatible providers through the official SDKs.

The SDKs' own retries are off: the gateway owns retries. Errors are mapped to RetryableError,
ContextLimitError or ProviderError, with any secret scrubbed from the provider's message.
"""

from __future__ import annotations

import base64
import functools
import importlib
import ssl
import sys
import time
from typing import Any

import certifi
import numpy as np

from raspberry.errors import ProviderError
from raspberry.llm.rate_headers import RateLimitInfo, parse_rate_headers
from raspberry.llm.types import (
    MAX_TOKENS,
    REFUSAL,
    STOP,
    Completion,
    ContextLimitError,
    Request,
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


def _response_type(sdk: Any) -> type:
    """The Response class of the HTTP library the SDK is built on (httpx or its fork)."""
    base = next(c for c in sdk.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
    return sys.modules[base.__module__.split(".")[0]].Response


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One certificate store for every client: loading it costs tens of ms per client."""
    return ssl.create_default_context(cafile=certifi.where())


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
        prompt_cache: bool,
    ):
        self.name, self.kind = name, kind
        self.prompt_cache = prompt_cache
        self._secrets = [api_key] if api_key else []
        # Imported here, not with the module: the two SDKs take seconds to import, which every
        # command paid before it could even say that a config file is missing.
        sdk: Any = importlib.import_module("anthropic" if kind == "anthropic" else "openai")
        self._errors = sdk
        if kind != "anthropic" and base_url:
            base_url = openai_base_url(base_url)
        self.base_url = base_url
        # The SDKs' aiohttp transport: their default httpx pool scans every connection for each
        # request, which at hundreds in flight cost more CPU than the rest of the client.
        limits = type(sdk.DEFAULT_CONNECTION_LIMITS)(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        client_type = sdk.AsyncAnthropic if kind == "anthropic" else sdk.AsyncOpenAI
        self._client: Any = client_type(
            base_url=base_url,
            api_key=api_key or "no-key",  # local servers take any key; the SDKs want one
            max_retries=0,
            timeout=timeout_s,
            http_client=sdk.DefaultAioHttpClient(
                limits=limits, timeout=timeout_s, verify=_tls_context()
            ),
        )
        self._response_type = _response_type(sdk)

    async def complete(self, request: Request) -> tuple[Completion, RateLimitInfo]:
        """The completion and what the response's headers say about the rate limits."""
        # The request goes through the SDK client (auth, headers, timeouts, error types) as a
        # plain JSON body: the SDKs' typed create() walks every message with typing
        # introspection, about 5 ms of CPU per long dialogue request, more than all the rest.
        path = "/v1/messages" if self.kind == "anthropic" else "/chat/completions"
        body = self.request_body(request)
        started = time.monotonic()
        raw = await self._post(path, body)
        try:
            data = raw.json()
            completion = (
                anthropic_completion(data) if self.kind == "anthropic" else openai_completion(data)
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            # A 200 whose body is not a completion: a server fault, worth another try.
            raise RetryableError(
                f"{self.name}: malformed response ({type(exc).__name__})"
            ) from None
        completion.latency_s = time.monotonic() - started
        return completion, parse_rate_headers(self.kind, raw.headers, time.time())

    async def embed(self, model: str, texts: list[str]) -> tuple[list[Completion], RateLimitInfo]:
        """One embeddings request (OpenAI-compatible /embeddings): a Completion per text holding
        its vector, the request's input tokens shared out by length."""
        if self.kind == "anthropic":
            raise ProviderError(
                f"{self.name}: Anthropic has no embeddings API; give the embedder role an "
                "openai or openai_compatible provider"
            )
        body = {"model": model, "input": texts, "encoding_format": "float"}
        started = time.monotonic()
        raw = await self._post("/embeddings", body)
        try:
            data = raw.json()
            rows = sorted(data["data"], key=lambda d: d["index"])
            vectors = [np.asarray(d["embedding"], np.float32) for d in rows]
            if len(vectors) != len(texts) or any(not len(v) for v in vectors):
                raise ValueError("not one vector per input")
            total = (data.get("usage") or {}).get("prompt_tokens") or 0
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RetryableError(
                f"{self.name}: malformed response ({type(exc).__name__})"
            ) from None
        latency = time.monotonic() - started
        chars = sum(len(t) for t in texts) or 1
        out = [
            Completion(
                text="",
                stop_reason=STOP,
                tokens_in=round(total * len(text) / chars),
                tokens_out=0,
                model=data.get("model") or model,
                latency_s=latency,
                vector=base64.b64encode(v.astype("<f4").tobytes()).decode(),
            )
            for text, v in zip(texts, vectors, strict=True)
        ]
        return out, parse_rate_headers(self.kind, raw.headers, time.time())

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        """The raw response to a JSON POST, its failures mapped to the gateway's errors."""
        try:
            return await self._client.post(path, body=body, cast_to=self._response_type)
        except self._errors.APIStatusError as exc:
            raise self._map_status(exc) from None
        except self._errors.APITimeoutError:
            raise RetryableError(f"{self.name}: request timed out") from None
        except self._errors.APIConnectionError as exc:
            raise RetryableError(
                f"{self.name}: connection error: {scrub(str(exc), self._secrets)}"
            ) from None

    def request_body(self, request: Request) -> dict[str, Any]:
        """The JSON body of one request in this provider's API, direct or in a batch."""
        if self.kind == "anthropic":
            return anthropic_body(request, self.prompt_cache)
        return openai_body(self.kind, request)

    def client(self) -> Any:
        """An SDK client, for calls outside the request path (batch APIs)."""
        return self._client

    def _map_status(self, exc: Any) -> Exception:
        status = exc.status_code
        message = scrub(str(getattr(exc, "message", exc)), self._secrets)
        if status == 429 or status >= 500:
            headers = exc.response.headers
            return RetryableError(
                f"{self.name}: HTTP {status}: {message}",
                retry_after=_retry_after(headers),
                status=status,
                limits=parse_rate_headers(self.kind, headers, time.time()),
            )
        if status == 400 and any(w in message.lower() for w in _CONTEXT_WORDS):
            return ContextLimitError(f"{self.name}: {message}")
        return ProviderError(f"{self.name}: HTTP {status}: {message}")

    async def close(self) -> None:
        await self._client.close()


def openai_base_url(base_url: str) -> str:
    """An OpenAI-style server's URL as the SDK wants it: with its /v1."""
    return base_url if base_url.rstrip("/").endswith("/v1") else f"{base_url.rstrip('/')}/v1"


# --- Request bodies and responses, shared by direct calls and the batch APIs -------------------


_EPHEMERAL = {"type": "ephemeral"}


def anthropic_body(request: Request, prompt_cache: bool) -> dict[str, Any]:
    """A Messages API body. With `prompt_cache`, breakpoints after the system prompt (the same
    for every request of a role) and, in a conversation, after its last message: the next turn
    then reads all of this one's prompt from the cache."""
    messages: list[dict[str, Any]] = request.messages
    system: Any = request.system
    if prompt_cache:
        if system:
            system = [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
        if len(messages) > 1:
            last = messages[-1]
            marked = [{"type": "text", "text": last["content"], "cache_control": _EPHEMERAL}]
            messages = [*messages[:-1], {"role": last["role"], "content": marked}]
    params = dict(request.params)
    if budget := params.pop("thinking", None):
        params["thinking"] = {"type": "enabled", "budget_tokens": budget}
    body: dict[str, Any] = {"model": request.model, "messages": messages, **params}
    if system:
        body["system"] = system
    return body


def openai_body(kind: str, request: Request) -> dict[str, Any]:
    system, params = request.system, request.params
    full = ([{"role": "system", "content": system}] if system else []) + request.messages
    if kind == "openai":
        # OpenAI's own API wants max_completion_tokens (reasoning models reject max_tokens).
        params = {
            ("max_completion_tokens" if k == "max_tokens" else k): v for k, v in params.items()
        }
    elif params.get("thinking"):
        # vLLM and SGLang switch a thinking model's chat template on with this.
        params = {k: v for k, v in params.items() if k != "thinking"}
        params["chat_template_kwargs"] = {"enable_thinking": True}
    # The seed keeps distinct samples of one request distinct and reproducible where honoured.
    return {"model": request.model, "messages": full, "seed": request.sample_index, **params}


def anthropic_completion(data: dict[str, Any]) -> Completion:
    """A Messages API response body (JSON) as a Completion."""
    text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
    thinking = "\n\n".join(
        b.get("thinking", "") for b in data["content"] if b.get("type") == "thinking"
    )
    usage = data["usage"]
    read = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return Completion(
        text=text,
        stop_reason=_STOP_REASONS.get(data.get("stop_reason") or "", STOP),
        tokens_in=usage["input_tokens"] + read + written,
        tokens_cache_read=read,
        tokens_cache_write=written,
        tokens_out=usage["output_tokens"],
        # Anthropic bills thinking within output_tokens without a count of its own.
        thinking=thinking,
        tokens_thinking=len(thinking) // 4,
        model=data["model"],
    )


def openai_completion(data: dict[str, Any]) -> Completion:
    """A Chat Completions response body (JSON) as a Completion."""
    choice = data["choices"][0]
    message = choice["message"]
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    finish = _STOP_REASONS.get(choice.get("finish_reason") or "", STOP)
    # vLLM, SGLang and DeepSeek return it as reasoning_content; some servers as reasoning.
    thinking = message.get("reasoning_content") or message.get("reasoning") or ""
    thinking = thinking if isinstance(thinking, str) else ""
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return Completion(
        text=message.get("content") or "",
        thinking=thinking,
        tokens_thinking=reasoning or len(thinking) // 4,
        stop_reason=REFUSAL if message.get("refusal") else finish,
        tokens_in=usage.get("prompt_tokens") or 0,
        tokens_cache_read=details.get("cached_tokens") or 0,
        tokens_out=usage.get("completion_tokens") or 0,
        model=data["model"],
    )
