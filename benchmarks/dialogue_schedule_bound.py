"""How close to the ideal can dialogues finish if the client cost nothing? A scheduling model.

    python benchmarks/dialogue_schedule_bound.py [--n 1000] [--concurrency 200] [--latency-s 2]

Draws each dialogue's number of calls as the simulated teacher makes them (first attempt wrong
with --wrong-first-prob, a later one with --wrong-retry-prob, up to --max-turns; calls = 2 x
attempts - 1, the nudges between attempts included), then plays them through a concurrency limit
with every call taking exactly the latency and zero client time, under three orders for the
calls waiting for a slot: FIFO (a plain semaphore), depth-first (a dialogue's next call before
dialogues that made fewer) and fewest-calls-first (the gateway's order: a dialogue's calls ask
for a slot with the number of calls it has made, lowest first). Prints one JSON line: the ideal
of benchmarks/dialogue_throughput.py, each order's finish time and ratio. Compare with that
benchmark's measured ratio to see what the client's own CPU adds.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random


def draw_chains(
    n: int, wrong_first: float, wrong_retry: float, max_turns: int, seed: int
) -> list[int]:
    rng = random.Random(seed)
    chains = []
    for _ in range(n):
        attempts = 1
        if rng.random() < wrong_first:
            attempts = 2
            while attempts < max_turns and rng.random() < wrong_retry:
                attempts += 1
        chains.append(2 * attempts - 1)
    return chains


ORDERS = {
    "fifo": lambda calls, arrival: (arrival,),
    "depth_first": lambda calls, arrival: (-calls, arrival),
    "fewest_calls_first": lambda calls, arrival: (calls, arrival),
}


def finish_time(chains: list[int], concurrency: int, latency: float, order: str) -> float:
    """When the last call ends. Waiting calls are ranked by ORDERS[order](calls made, arrival)."""
    rank = ORDERS[order]
    waiting = [(rank(0, d), 0, d) for d in range(len(chains))]
    heapq.heapify(waiting)
    running: list[tuple[float, int, int]] = []
    now, arrival = 0.0, len(chains)
    while waiting or running:
        while waiting and len(running) < concurrency:
            _, calls, dialogue = heapq.heappop(waiting)
            heapq.heappush(running, (now + latency, dialogue, calls))
        now, dialogue, calls = heapq.heappop(running)
        if calls + 1 < chains[dialogue]:
            heapq.heappush(waiting, (rank(calls + 1, arrival), calls + 1, dialogue))
            arrival += 1
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency-s", type=float, default=2.0)
    parser.add_argument("--wrong-first-prob", type=float, default=0.7)
    parser.add_argument("--wrong-retry-prob", type=float, default=0.25)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    chains = draw_chains(
        args.n, args.wrong_first_prob, args.wrong_retry_prob, args.max_turns, args.seed
    )
    ideal = max(sum(chains) * args.latency_s / args.concurrency, max(chains) * args.latency_s)
    out = {"calls": sum(chains), "ideal_s": round(ideal, 2)}
    for order in ORDERS:
        t = finish_time(chains, args.concurrency, args.latency_s, order)
        out[f"{order}_s"], out[f"{order}_ratio"] = round(t, 2), round(t / ideal, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
