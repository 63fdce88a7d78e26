"""An offline server speaking the OpenAI Chat Completions and Embeddings and the Anthropic
Messages APIs.

Close enough that the official SDKs work against it unmodified: ids, usage blocks with
prompt-cache reads and writes (prompt_cache.py), stop reasons, error bodies and rate-limit
headers. Knobs: latency and jitter, a requests-per-minute limit enforced as a fixed or sliding
one-second window or a token bucket (limits.py: 429 + retry-after), a 5xx rate, a seed. It
binds loopback only.
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
from collections import Counter

import uvicorn
from raspberry_sim import embeddings as sim_embeddings
from raspberry_sim.batches import Batches
from raspberry_sim.completions import ERROR_KINDS, answer, error_body, text_of
from raspberry_sim.config import SimConfig
from raspberry_sim.fine_tuning import FineTuning
from raspberry_sim.limits import Limiter
from raspberry_sim.prompt_cache import PromptCache
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from raspberry.errors import RaspberryError


def _error(
    style: str, status: int, kind: str, message: str, headers: dict[str, str]
) -> JSONResponse:
    return JSONResponse(error_body(style, kind, message), status_code=status, headers=headers)


def create_app(settings: SimConfig) -> Starlette:
    limiter = Limiter(settings.rpm, settings.limit_mode)
    faults = random.Random(settings.seed)
    stats: Counter[str] = Counter()
    cache = PromptCache(settings.cache_min_tokens) if settings.prompt_cache else None
    batches = Batches(settings.behaviour(), settings.batch(), stats, cache)
    fine_tuning = FineTuning(batches.files, settings.fine_tune_s, stats)

    async def handle(request: Request, style: str, embeddings: bool = False) -> Response:
        # Requests being answered at once, and the most ever: what a client's limits let through.
        stats["in_flight"] += 1
        stats["peak_in_flight"] = max(stats["peak_in_flight"], stats["in_flight"])
        try:
            return await answer_one(request, style, embeddings)
        finally:
            stats["in_flight"] -= 1

    async def answer_one(request: Request, style: str, embeddings: bool) -> Response:
        stats["requests"] += 1
        kinds = ERROR_KINDS[style]
        try:
            body = await request.json()
            model = body["model"]
            vectors = sim_embeddings.answer(body) if embeddings else None
        except ClientDisconnect:  # a client killed mid-request: nothing to answer
            stats["client_disconnects"] += 1
            return Response(status_code=499)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            stats["status_400"] += 1
            return _error(style, 400, kinds[400], f"malformed request: {exc}", {})
        stats[f"model:{model}"] += 1
        admitted, wait = limiter.admit()
        if admitted and settings.rate_limit_rate and faults.random() < settings.rate_limit_rate:
            admitted, wait = False, 0.2
            stats["fault_429"] += 1
        if not admitted:
            stats["status_429"] += 1
            headers = {
                **limiter.headers(style),
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(int(wait * 1000) + 1),
            }
            return _error(style, 429, kinds[429], "rate limit exceeded, retry later", headers)
        delay = settings.latency_ms + faults.uniform(-settings.jitter_ms, settings.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if settings.fail_containing:
            messages = body.get("messages") or []
            said = "\n".join(text_of(m.get("content")) for m in messages if isinstance(m, dict))
            if any(text in said for text in settings.fail_containing):
                stats["fault_fail_containing"] += 1
                return _error(style, 500, kinds[500], "simulated outage for this request", {})
        if settings.error_rate and faults.random() < settings.error_rate:
            stats["status_500"] += 1
            return _error(style, 500, kinds[500], "simulated server error", {})
        if settings.hang_rate and faults.random() < settings.hang_rate:
            stats["fault_hang"] += 1
            await asyncio.sleep(3600)  # the client's timeout has to end this request

        def mangle(model: str, text: str) -> str:
            if settings.empty_rate and faults.random() < settings.empty_rate:
                stats["fault_empty"] += 1
                return ""
            judged = model.startswith("sim-judge")
            if judged and faults.random() < settings.malformed_judge_rate:
                stats["fault_malformed_judge"] += 1
                return text[: len(text) // 2]
            return text

        if vectors is not None:
            stats["status_200"] += 1
            return JSONResponse(vectors, headers=limiter.headers(style))
        status, payload = answer(style, body, settings.behaviour(), mangle, cache)
        stats[f"status_{status}"] += 1
        usage = payload.get("usage") or {}
        stats["cache_read_tokens"] += usage.get("cache_read_input_tokens") or (
            usage.get("prompt_tokens_details") or {}
        ).get("cached_tokens", 0)
        stats["cache_write_tokens"] += usage.get("cache_creation_input_tokens") or 0
        return JSONResponse(payload, status_code=status, headers=limiter.headers(style))

    async def openai_chat(request: Request) -> Response:
        return await handle(request, "openai")

    async def openai_embeddings(request: Request) -> Response:
        return await handle(request, "openai", embeddings=True)

    async def anthropic_messages(request: Request) -> Response:
        return await handle(request, "anthropic")

    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse(dict(stats))

    return Starlette(
        routes=[
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route("/v1/embeddings", openai_embeddings, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            *batches.routes(),
            *fine_tuning.routes(),
            Route("/_sim/stats", get_stats, methods=["GET"]),
        ]
    )


def _exit_when_orphaned(parent: int) -> None:
    # A build killed with SIGKILL cannot stop its simulator; the simulator notices and leaves.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def serve(settings: SimConfig, port: int = 0, exit_with_parent: bool = False) -> None:
    """Serve on 127.0.0.1:port (0 picks a free port); prints the URL on the first line."""
    if exit_with_parent:
        threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise RaspberryError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); give another --port, or 0 "
            "for a free one"
        ) from None
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
        # httptools parses HTTP in C: with h11 the simulator spent ~2 ms of CPU per request, and
        # a burst of 200 answers waited on it in turn, which benchmarks counted as latency.
        http="httptools",
    )
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    """`python -m raspberry_sim.server --port P [--exit-with-parent] --settings JSON`: what a
    build starts (sim/process.py); people use `raspberry sim serve` and its flags."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--settings", default="{}", help="a SimConfig as JSON")
    args = parser.parse_args()
    try:
        serve(SimConfig.model_validate_json(args.settings), args.port, args.exit_with_parent)
    except KeyboardInterrupt:  # stopped with its build's process group: the build says why
        sys.exit(130)
    except RaspberryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
