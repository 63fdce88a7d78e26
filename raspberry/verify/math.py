"""Math equivalence by math-verify, in worker processes, under a hard timeout of our own.

math-verify's own timeouts use signals, which work only in a main thread: shard tasks run in
threads, so every check runs in a worker process (whose main thread it has), and a worker that
still hangs past `timeout_s` is killed with its pool, and the remaining checks go to a new one.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from fractions import Fraction

INNER_TIMEOUT_S = 5  # math-verify's own parsing and comparison timeouts, inside the worker


_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")
_PLAIN = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)(/-?\d+)?$")


def plain_number(text: str) -> Fraction | None:
    """An integer, decimal or fraction written plainly (also \\frac{a}{b}), exactly; else None."""
    text = text.strip().strip("$").replace(" ", "")
    text = _FRAC.sub(r"\1/\2", text)
    if not _PLAIN.match(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _as_latex(text: str) -> str:
    text = text.strip()
    return text if "$" in text or "\\boxed" in text else f"${text}$"


def verify_pair(gold: str, answer: str) -> bool:
    """In a worker: is `answer` mathematically equal to `gold` (gold first, as math-verify asks)?"""
    from math_verify import parse, verify

    parsed_gold = parse(_as_latex(gold), parsing_timeout=INNER_TIMEOUT_S)
    parsed_answer = parse(_as_latex(answer), parsing_timeout=INNER_TIMEOUT_S)
    if not parsed_gold or not parsed_answer:
        return False
    return bool(verify(parsed_gold, parsed_answer, timeout_seconds=INNER_TIMEOUT_S))


class MathPool:
    """A process pool for verify_pair; thread-safe; None for a check that timed out."""

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = 10.0,
        compare: Callable[[str, str], bool] = verify_pair,
    ):
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.timeout_s = timeout_s
        self._compare = compare  # a module-level function: the workers import it by name
        self._last_progress = time.monotonic()
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # forkserver: safe to start from a process with threads (Prefect's, the shards').
                context = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._pool

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        # The executor cannot stop a running call; its worker processes can be killed.
        for process in list((pool._processes or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _progressed(self, _future: Future[bool]) -> None:
        self._last_progress = time.monotonic()

    def _wait(self, future: Future[bool]) -> str:
        """equal, different, hung (no check anywhere finished for timeout_s), or lost (the pool
        was killed or broke under it)."""
        while True:
            try:
                return "equal" if future.result(timeout=self.timeout_s) else "different"
            except FutureTimeout:
                # Only a pool that has stopped making progress is hung: a check may also be
                # waiting behind other threads' checks.
                if time.monotonic() - self._last_progress >= self.timeout_s:
                    return "hung"
            except (BrokenProcessPool, CancelledError):
                return "lost"
            except Exception:  # math-verify raised on this input: not equal
                return "different"

    def verify_many(self, pairs: list[tuple[str, str]]) -> list[bool | None]:
        results: list[bool | None] = [None] * len(pairs)
        pending = []
        for i, (gold, answer) in enumerate(pairs):
            # Two plain numbers need no parser: compared exactly here, as math-verify would
            # (to its 6 decimal places), at a thousandth of the cost.
            g, a = plain_number(gold), plain_number(answer)
            if g is not None and a is not None:
                results[i] = abs(g - a) < Fraction(1, 10**6) * max(1, abs(g))
            else:
                pending.append(i)
        while pending:
            pool = self._get()
            futures = {i: pool.submit(self._compare, *pairs[i]) for i in pending}
            self._last_progress = time.monotonic()
            for future in futures.values():
                future.add_done_callback(self._progressed)
            pending = []
            broken = False
            for i, future in futures.items():
                if broken and not (future.done() and not future.cancelled()):
                    pending.append(i)  # unfinished when its pool was killed: to the next pool
                    continue
                outcome = self._wait(future)  # at once for a finished check
                if outcome == "hung":
                    results[i] = None  # this one hangs: it fails, the rest go to a new pool
                elif outcome == "lost":
                    pending.append(i)
                else:
                    results[i] = outcome == "equal"
                if outcome in ("hung", "lost") and not broken:
                    self._kill(pool)
                    broken = True
        return results

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


MATH = MathPool()
