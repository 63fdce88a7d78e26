"""What the simulated APIs answer to one request: a completion or an error body, per API style.

Shared by the direct endpoints (server.py) and the batch endpoints (batches.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from raspberry_sim.prompt_cache import PromptCache
from raspberry_sim.roles import Behaviour, respond
from raspberry_sim.thinking import asked, invalid, think


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def error_body(style: str, kind: str, message: str) -> dict[str, Any]:
    if style == "openai":
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return {"type": "error", "error": {"type": kind, "message": message}}


ERROR_KINDS = {
    "openai": {
        429: "rate_limit_exceeded",
        500: "server_error",
        400: "invalid_request_error",
        404: "model_not_found",
    },
    "anthropic": {
        429: "rate_limit_error",
        500: "api_error",
        400: "invalid_request_error",
        404: "not_found_error",
    },
}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or [] if isinstance(block, dict))


def _parse(body: Any) -> tuple[str, list[dict[str, str]], int]:
    """Model, messages and max_tokens of a request body; KeyError/TypeError/ValueError if bad."""
    messages = [{"role": m["role"], "content": text_of(m["content"])} for m in body["messages"]]
    max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 4096)
    return body["model"], messages, max_tokens


def _marked(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("cache_control") for b in content
    )


def _anthropic_blocks(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The prompt as Anthropic caches it: the system prompt, then each message, in order, each
    with whether it carries a cache_control breakpoint."""
    system = body.get("system")
    blocks = [(text_of(system), _marked(system))] if system else []
    for m in body["messages"]:
        blocks.append((f"{m['role']}:{text_of(m['content'])}", _marked(m["content"])))
    return blocks


def answer(
    style: str,
    body: dict[str, Any],
    behaviour: Behaviour,
    mangle: Callable[[str, str], str] | None = None,
    cache: PromptCache | None = None,
) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one completion, as the direct and the batch APIs return it;
    `mangle(model, text)` may spoil the text (the server's fault injection); `cache` reports
    the prompt-cache reads and writes in the usage block."""
    kinds = ERROR_KINDS[style]
    try:
        model, messages, max_tokens = _parse(body)
        prompt = "".join(f"{m['role']}:{m['content']}" for m in messages)
    except (KeyError, TypeError, ValueError) as exc:
        return 400, error_body(style, kinds[400], f"malformed request: {exc}")
    if style == "openai":
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        messages = [m for m in messages if m["role"] != "system"]
        sample = int(body.get("seed") or 0)
    else:
        system = text_of(body.get("system")) or None
        sample = 0
    thinks = asked(style, body)
    if thinks and style == "anthropic" and (problem := invalid(body, max_tokens)):
        return 400, error_body(style, kinds[400], problem)
    try:
        text = respond(model, system, messages, sample, behaviour)
    except KeyError:
        return 404, error_body(style, kinds[404], f"model '{model}' does not exist")
    if mangle:
        text = mangle(model, text)
    thought = think(messages[0]["content"], text, body.get("reasoning_effort")) if thinks else ""
    tokens_in = tokens((system or "") + "".join(m["content"] for m in messages))
    read = written = 0
    if cache and style == "openai":
        read = cache.openai(model, prompt)
    elif cache:
        read, written = cache.anthropic(model, _anthropic_blocks(body))
    read, written = min(read, tokens_in), min(written, tokens_in - min(read, tokens_in))
    thinking_tokens = tokens(thought) if thought else 0
    tokens_out = tokens(text) + thinking_tokens
    truncated = tokens_out > max_tokens
    if truncated:
        text = text[: max(0, max_tokens - thinking_tokens) * 4]
        tokens_out = max_tokens
    if style == "openai":
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_sim",
            "choices": [
                {
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": "length" if truncated else "stop",
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": None,
                        **({"reasoning_content": thought} if thinks == "visible" else {}),
                    },
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
                "prompt_tokens_details": {"cached_tokens": read},
                "completion_tokens_details": {"reasoning_tokens": thinking_tokens},
            },
        }
    return 200, {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": (
            [{"type": "thinking", "thinking": thought, "signature": "sim-signature"}]
            if thought
            else []
        )
        + [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if truncated else "end_turn",
        "stop_sequence": None,
        # input_tokens counts what was neither read from nor written to the cache.
        "usage": {
            "input_tokens": tokens_in - read - written,
            "output_tokens": tokens_out,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        },
    }
