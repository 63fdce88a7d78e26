"""`raspberry reward serve`: the verifiers as a reward over HTTP, for RL trainers that call a
remote reward (OpenRLHF's `--remote_rm_url`, a verl reward manager that posts).

    POST /reward      {"completions": [text, ...], "verification": [spec, ...]}
    POST /get_reward  {"query": [text, ...], "labels": [spec, ...]}   (OpenRLHF's names)
    -> {"rewards": [float, ...]}

A spec is the `verification` column of the `rl` export (a JSON object, or its text). Each
answer is scored by raspberry.verify.reward.score, in threads (code checks run in the sandbox).
"""

from __future__ import annotations

import argparse
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from raspberry.errors import RaspberryError
from raspberry.verify.reward import score

_NAMES = {"/reward": ("completions", "verification"), "/get_reward": ("query", "labels")}


def create_app(threads: int) -> Any:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool = ThreadPoolExecutor(threads)

    async def rewards(request: Request) -> JSONResponse:
        texts_key, specs_key = _NAMES[request.url.path]
        try:
            body = await request.json()
            texts, specs = body[texts_key], body[specs_key]
            if not isinstance(texts, list) or not isinstance(specs, list):
                raise TypeError
            if len(texts) != len(specs):
                raise ValueError
        except (ValueError, TypeError, KeyError):
            return JSONResponse(
                {"error": f"send {{'{texts_key}': [...], '{specs_key}': [...]}} of one length"},
                status_code=400,
            )
        found = await run_in_threadpool(lambda: list(pool.map(score, specs, map(str, texts))))
        return JSONResponse({"rewards": found})

    return Starlette(routes=[Route(path, rewards, methods=["POST"]) for path in _NAMES])


def cmd_reward_serve(args: argparse.Namespace) -> int:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise RaspberryError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}); give another --port"
        ) from None
    sock.listen(1024)
    print(f"reward server on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    sys.stdout.flush()
    config = uvicorn.Config(create_app(args.threads), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def add_parser(sub: argparse._SubParsersAction, command: Any) -> None:
    reward = sub.add_parser("reward", help="the verifiers as an RL reward",
                            description="The verifiers as an RL reward.")  # fmt: skip
    commands = reward.add_subparsers(dest="reward_command", required=True)
    serve = command(commands, "serve", "serve the reward over HTTP (OpenRLHF, verl)",
                    "raspberry reward serve --port 8800", cmd_reward_serve)  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8800, help="0 picks a free port")
    serve.add_argument("--threads", type=int, default=8, help="answers scored at once")
