"""An offline server speaking the OpenAI Chat Completions and Anthropic Messages APIs.

Close enough that the official SDKs work against it unmodified: ids, usage blocks, stop
reasons, error bodies and rate-limit headers. Knobs: latency and jitter, a requests-per-minute
limit enforced per second (429 + retry-after), a 5xx rate, a seed. It binds loopback only.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from raspberry.sim.roles import Behaviour, respond


@dataclass
class SimSettings:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rpm: int | None = None
    error_rate: float = 0.0
    behaviour: Behaviour = field(default_factory=Behaviour)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _Limiter:
    """rpm/60 requests per wall-clock second, as many providers enforce a per-minute limit."""

    def __init__(self, rpm: int | None):
        self.per_second = max(1, rpm // 60) if rpm else None
        self.window = 0
        self.used = 0

    def admit(self) -> tuple[bool, float]:
        now = time.time()
        if self.per_second is None:
            return True, 0.0
        if int(now) != self.window:
            self.window, self.used = int(now), 0
        if self.used < self.per_second:
            self.used += 1
            return True, 0.0
        return False, math.ceil(now) - now

    def headers(self, style: str, wait: float) -> dict[str, str]:
        if self.per_second is None:
            return {}
        limit, remaining = self.per_second * 60, max(0, self.per_second - self.used)
        if style == "openai":
            return {
                "x-ratelimit-limit-requests": str(limit),
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": f"{max(wait, 0.001):.3f}s",
            }
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(time.time())))
        return {
            "anthropic-ratelimit-requests-limit": str(limit),
            "anthropic-ratelimit-requests-remaining": str(remaining),
            "anthropic-ratelimit-requests-reset": reset,
        }


def _error(
    style: str, status: int, kind: str, message: str, headers: dict[str, str]
) -> JSONResponse:
    if style == "openai":
        body: dict[str, Any] = {
            "error": {"message": message, "type": kind, "param": None, "code": kind}
        }
    else:
        body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


_ERROR_KINDS = {
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


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or [] if isinstance(block, dict))


def create_app(settings: SimSettings) -> Starlette:
    limiter = _Limiter(settings.rpm)
    faults = random.Random(settings.behaviour.seed)
    stats: Counter[str] = Counter()

    async def handle(request: Request, style: str) -> Response:
        stats["requests"] += 1
        kinds = _ERROR_KINDS[style]
        try:
            body = await request.json()
            model = body["model"]
            messages = [
                {"role": m["role"], "content": _text_of(m["content"])} for m in body["messages"]
            ]
            max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 4096)
        except ClientDisconnect:  # a client killed mid-request: nothing to answer
            stats["client_disconnects"] += 1
            return Response(status_code=499)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            stats["status_400"] += 1
            return _error(style, 400, kinds[400], f"malformed request: {exc}", {})
        stats[f"model:{model}"] += 1
        admitted, wait = limiter.admit()
        if not admitted:
            stats["status_429"] += 1
            headers = {
                **limiter.headers(style, wait),
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(int(wait * 1000) + 1),
            }
            return _error(style, 429, kinds[429], "rate limit exceeded, retry later", headers)
        delay = settings.latency_ms + faults.uniform(-settings.jitter_ms, settings.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if settings.error_rate and faults.random() < settings.error_rate:
            stats["status_500"] += 1
            return _error(style, 500, kinds[500], "simulated server error", {})
        if style == "openai":
            system = next((m["content"] for m in messages if m["role"] == "system"), None)
            messages = [m for m in messages if m["role"] != "system"]
            sample = int(body.get("seed") or 0)
        else:
            system = _text_of(body.get("system")) or None
            sample = 0
        try:
            text = respond(model, system, messages, sample, settings.behaviour)
        except KeyError:
            stats["status_404"] += 1
            return _error(style, 404, kinds[404], f"model '{model}' does not exist", {})
        tokens_in = _tokens((system or "") + "".join(m["content"] for m in messages))
        tokens_out = _tokens(text)
        truncated = tokens_out > max_tokens
        if truncated:
            text, tokens_out = text[: max_tokens * 4], max_tokens
        stats["status_200"] += 1
        headers = limiter.headers(style, 0.0)
        if style == "openai":
            return JSONResponse(
                {
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
                            "message": {"role": "assistant", "content": text, "refusal": None},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": tokens_in,
                        "completion_tokens": tokens_out,
                        "total_tokens": tokens_in + tokens_out,
                    },
                },
                headers=headers,
            )
        return JSONResponse(
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if truncated else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
            },
            headers=headers,
        )

    async def openai_chat(request: Request) -> JSONResponse:
        return await handle(request, "openai")

    async def anthropic_messages(request: Request) -> JSONResponse:
        return await handle(request, "anthropic")

    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse(dict(stats))

    return Starlette(
        routes=[
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            Route("/_sim/stats", get_stats, methods=["GET"]),
        ]
    )


def _exit_when_orphaned(parent: int) -> None:
    # A build killed with SIGKILL cannot stop its simulator; the simulator notices and leaves.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def serve(settings: SimSettings, port: int = 0, exit_with_parent: bool = False) -> None:
    """Serve on 127.0.0.1:port (0 picks a free port); prints the URL on the first line."""
    if exit_with_parent:
        threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # Listen before announcing the URL, so a client that connects at once is queued, not refused.
    sock.listen(4096)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    sys.stdout.flush()
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run(sockets=[sock])
