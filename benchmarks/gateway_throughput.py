"""Gateway throughput and politeness against any OpenAI- or Anthropic-compatible server.

    python benchmarks/gateway_throughput.py --base-url URL --provider openai|anthropic \\
        --n 2000 --concurrency 100 [--rpm 6000] [--client gateway|bare] [--model M]

Sends N distinct single-turn requests and prints one JSON line: wall_s, ok, errors, retries,
rate_limited (429s seen), cpu_s_per_1k (this process's CPU per 1,000 requests) and max_rss_mb.
`--client bare` is the baseline: the official SDK alone behind an asyncio.Semaphore, with the
SDK's own retries (which honour Retry-After). `--rpm` seeds the gateway's request limit; the
gateway also learns it from the response headers.

`--base-url sim` starts the project's simulated server (`--sim-latency-ms`, `--sim-rpm`,
`--sim-limit-mode fixed|sliding|bucket`) for the run. `--runs K` repeats the run K times, each
in a fresh process, and adds a line of medians.

`--cpu-split` profiles the run (cProfile on CPU time, which slows it: read its shares, not its
times) and adds where this process's CPU went, by the file of each function's own time: the SDK
and HTTP stack, the gateway's logic, the state store (SQLAlchemy, the database drivers and the
gateway modules that only talk to them), and the event loop and the rest.

`--state-url URL` puts the gateway's state in that database (`pg`: a throwaway PostgreSQL
server for the run) instead of a SQLite file. `--processes N` splits the requests and the
concurrency over N OS processes that share one gateway state (the request cache, the budget and
the rate-limit buckets), a throwaway PostgreSQL server when no URL is given, and prints one line
for the whole run (CPU summed over the processes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # its throwaway PostgreSQL server

from pg_server import running_postgres  # noqa: E402
from raspberry_sim.config import SimConfig  # noqa: E402
from raspberry_sim.process import running_sim  # noqa: E402

from raspberry.llm import Gateway  # noqa: E402
from raspberry.stages.config import BuildConfig  # noqa: E402

FIELDS = ("wall_s", "ok", "errors", "retries", "rate_limited", "cpu_s_per_1k", "max_rss_mb")
# Where a function's own CPU time goes, by the first of these its file or name contains.
PLACES = (
    ("state store", ("sqlalchemy", "sqlite3", "psycopg", "llm/state.py", "llm/cache.py",
                     "llm/books.py", "llm/shared_limits.py", "llm/spool.py")),
    ("SDK and HTTP", ("openai", "anthropic", "httpx", "httpcore", "h11", "anyio", "pydantic",
                      "ssl", "socket", "json")),
    ("gateway logic", ("raspberry/",)),
)  # fmt: skip


def cpu_split(profile: cProfile.Profile) -> dict[str, float]:
    """Shares of the profiled CPU time by place (PLACES; the rest: the event loop and others)."""
    totals: dict[str, float] = {name: 0.0 for name, _ in PLACES}
    totals["event loop and the rest"] = 0.0
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own, _, _) in stats.items():
        where = f"{filename}:{function}"
        place = next((n for n, marks in PLACES if any(m in where for m in marks)), None)
        totals[place or "event loop and the rest"] += own
    whole = sum(totals.values()) or 1.0
    return {name: round(t / whole, 3) for name, t in totals.items()}


def _prompt(i: int, nonce: str = "") -> list[dict[str, str]]:
    text = f"Request {i}{nonce}: what is {i} + {i}? Answer briefly."
    return [{"role": "user", "content": text}]


async def run_gateway(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    limits = {"*": {"rpm": args.rpm}} if args.rpm else {}
    config = BuildConfig.model_validate(
        {
            "name": "gateway-bench",
            "providers": {
                "p": {
                    "kind": "anthropic" if args.provider == "anthropic" else "openai_compatible",
                    "base_url": args.base_url,
                    "api_key_env": args.api_key_env,
                    "limits": limits,
                }
            },
            "models": {
                role: {"provider": "p", "model": args.model, "max_tokens": args.max_tokens}
                for role in ("teacher", "user_standin", "judge", "rewriter")
            },
            "gateway": {
                "max_concurrency": args.concurrency,
                "max_retries": 20,
                "cache_path": str(cache),
                "state_url": args.state_url,
            },
            "questions": {"reasoning_gym": [{"task": "chain_sum", "count": 1}]},
        }
    )
    async with Gateway(config.llm) as gw:

        async def one(i: int) -> bool:
            try:
                await gw.chat("teacher", _prompt(i, args.nonce), prompt_ref="bench@1")
                return True
            except Exception:
                return False

        first = args.offset
        results = await asyncio.gather(*(one(i) for i in range(first, first + args.n)))
        stats = gw.stats
    return {
        "ok": sum(results),
        "errors": args.n - sum(results),
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
    }


async def run_bare(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    counts = {"attempts": 0, "429": 0}

    async def count(response: httpx.Response) -> None:
        counts["attempts"] += 1
        counts["429"] += response.status_code == 429

    key = os.environ.get(args.api_key_env or "", "no-key")
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    if args.provider == "anthropic":
        import anthropic

        client: Any = anthropic.AsyncAnthropic(
            base_url=args.base_url,
            api_key=key,
            max_retries=20,
            http_client=anthropic.DefaultAsyncHttpxClient(
                limits=limits, event_hooks={"response": [count]}
            ),
        )
    else:
        import openai

        client = openai.AsyncOpenAI(
            base_url=f"{args.base_url.rstrip('/')}/v1",
            api_key=key,
            max_retries=20,
            http_client=openai.DefaultAsyncHttpxClient(
                limits=limits, event_hooks={"response": [count]}
            ),
        )
    slots = asyncio.Semaphore(args.concurrency)

    async def one(i: int) -> bool:
        async with slots:
            try:
                if args.provider == "anthropic":
                    await client.messages.create(
                        model=args.model, messages=_prompt(i), max_tokens=args.max_tokens
                    )
                else:
                    await client.chat.completions.create(
                        model=args.model, messages=_prompt(i), max_tokens=args.max_tokens
                    )
                return True
            except Exception:
                return False

    results = await asyncio.gather(*(one(i) for i in range(args.n)))
    await client.close()
    return {
        "ok": sum(results),
        "errors": args.n - sum(results),
        "retries": counts["attempts"] - args.n,
        "rate_limited": counts["429"],
    }


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        if args.start_at:  # processes of one run start together, their imports done
            time.sleep(max(0.0, args.start_at - time.time()))
        # The SDK is imported before the clock starts, for both clients: a one-off, not a cost
        # per request.
        importlib.import_module(args.provider)
        profile = cProfile.Profile(time.process_time) if args.cpu_split else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        if args.client == "bare":
            result = asyncio.run(run_bare(args))
        else:
            result = asyncio.run(run_gateway(args, Path(tmp) / "cache.sqlite"))
        if profile:
            profile.disable()
            result["cpu_split"] = cpu_split(profile)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "client": args.client,
        "provider": args.provider,
        "n": args.n,
        "concurrency": args.concurrency,
        "wall_s": round(wall, 2),
        **result,
        "cpu_s_per_1k": round(1000 * cpu / args.n, 3),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_s": cpu,
        "ended_at": time.time(),
    }


def processes_run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """args.processes OS processes, each with its share of the requests and of the concurrency,
    sharing one gateway state (a throwaway PostgreSQL when --state-url is not given)."""
    with contextlib.ExitStack() as stack:
        state = args.state_url or stack.enter_context(running_postgres()).url
        k = args.processes
        start_at = time.time() + 15  # after every process has imported Prefect and the SDKs
        children = [
            subprocess.Popen(
                [
                    sys.executable, __file__, "--base-url", url, "--provider", args.provider,
                    "--n", str(args.n // k), "--offset", str(i * (args.n // k)),
                    "--concurrency", str(max(1, args.concurrency // k)),
                    "--model", args.model, "--max-tokens", str(args.max_tokens),
                    "--api-key-env", args.api_key_env, "--state-url", state,
                    "--start-at", str(start_at), f"--nonce={args.nonce}",
                    *(["--rpm", str(args.rpm)] if args.rpm else []),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(k)
        ]  # fmt: skip
        lines = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in children]
    total = sum(r["n"] for r in lines)
    return {
        "client": "gateway",
        "provider": args.provider,
        "processes": k,
        "n": total,
        "concurrency": args.concurrency,
        "wall_s": round(max(r["ended_at"] for r in lines) - start_at, 2),
        **{f: sum(r[f] for r in lines) for f in ("ok", "errors", "retries", "rate_limited")},
        "cpu_s_per_1k": round(1000 * sum(r["cpu_s"] for r in lines) / total, 3),
        "max_rss_mb": max(r["max_rss_mb"] for r in lines),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="server URL, or 'sim' to start one")
    parser.add_argument("--provider", choices=["openai", "anthropic"], required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rpm", type=int, help="the server's requests/min limit, if known")
    parser.add_argument("--client", choices=["gateway", "bare"], default="gateway")
    parser.add_argument("--model", default="sim-judge")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--api-key-env", help="environment variable holding the key")
    parser.add_argument("--sim-latency-ms", type=float, default=200)
    parser.add_argument("--sim-rpm", type=int)
    parser.add_argument(
        "--sim-limit-mode", choices=["fixed", "sliding", "bucket"], default="sliding"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cpu-split", action="store_true", help="where the CPU goes (profiled)")
    parser.add_argument("--processes", type=int, default=1, help="OS processes sharing the limit")
    parser.add_argument(
        "--state-url",
        help="the gateway state, 'pg' for a throwaway PostgreSQL (default: SQLite; "
        "with --processes, a throwaway PostgreSQL)",
    )
    # Set for the processes of a --processes run.
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--nonce", default=f"-{os.getpid()}-{time.time():.0f}", help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.api_key_env is None:  # a local server takes any key; the SDKs want one
        args.api_key_env = "RASPBERRY_BENCH_KEY"
        os.environ.setdefault(args.api_key_env, "no-key")
    with contextlib.ExitStack() as stack:
        if args.state_url == "pg":
            args.state_url = stack.enter_context(running_postgres()).url
        url = args.base_url
        if url == "sim":
            sim = SimConfig(
                latency_ms=args.sim_latency_ms, rpm=args.sim_rpm, limit_mode=args.sim_limit_mode
            )
            url = stack.enter_context(running_sim(sim))
        _runs(args, url)


def _runs(args: argparse.Namespace, url: str) -> None:
    if args.processes > 1:
        print(json.dumps(processes_run(args, url)), flush=True)
        return
    if args.runs == 1:
        args.base_url = url
        print(json.dumps(one_run(args)), flush=True)
        return
    # Each run in a fresh process, so that its CPU time and peak memory are its own.
    argv = [a for a in sys.argv[1:]]
    argv[argv.index("--base-url") + 1] = url
    argv[argv.index("--runs") + 1] = "1"
    results = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, __file__, *argv], capture_output=True, text=True, check=True
        )
        line = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(line), flush=True)
        results.append(line)
    medians = {k: statistics.median(r[k] for r in results) for k in FIELDS}
    print(json.dumps({"median_of_runs": args.runs, "client": args.client, **medians}))


if __name__ == "__main__":
    main()
