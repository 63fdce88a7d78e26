"""Math equivalence by math-verify, in worker processes, under a hard timeout of our own.

math-verify's own timeouts use signals, which work only in a main thread: shard tasks run in
threads, so every check runs in a worker process (verify/math_worker.py, whose main thread it
has), one check at a time; a worker that does not answer within `timeout_s` is killed, that
check fails, and a new worker takes its place. The workers are plain programs, not
multiprocessing's: they never import the caller's main module, so `check` is safe to call from
any script or from `python -`.
"""

from __future__ import annotations

import json
import os
import queue
import re
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

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


class _Worker:
    """One worker process and its pipes; asked one pair at a time."""

    def __init__(self, target: str, path: str | None):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raspberry.verify.math_worker",
                target,
                *([path] if path else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def ask(self, gold: str, answer: str, timeout_s: float) -> bool | None:
        """The answer, or None when the worker did not answer in time (it is then useless)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps([gold, answer]) + "\n")
            self.proc.stdin.flush()
        except OSError:
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        return {"true\n": True, "false\n": False}.get(line)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class MathPool:
    """Worker processes for verify_pair; thread-safe; None for a check that timed out."""

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = 10.0,
        compare: Callable[[str, str], bool] = verify_pair,
    ):
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.timeout_s = timeout_s
        # A module-level function: the workers import it by name (and from its folder).
        module = sys.modules[compare.__module__]
        self._target = f"{compare.__module__}:{compare.__qualname__}"
        self._path = (
            None
            if compare.__module__.startswith("raspberry.")
            else str(Path(module.__file__ or ".").parent)
        )
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                if len(self._all) < self.workers:
                    worker = _Worker(self._target, self._path)
                    self._all.add(worker)
                    return worker
        return self._idle.get()  # every worker is busy: wait for one

    def _check(self, gold: str, answer: str) -> bool | None:
        worker = self._take()
        result = worker.ask(gold, answer, self.timeout_s)
        if result is None:  # hung or dead: killed, and a new one takes its place at once (a
            worker.kill()  # thread may be waiting for a free worker: none would come back)
            fresh = _Worker(self._target, self._path)
            with self._lock:
                self._all.discard(worker)
                self._all.add(fresh)
            worker = fresh
        self._idle.put(worker)
        return result

    def verify_many(self, pairs: list[tuple[str, str]]) -> list[bool | None]:
        results: list[bool | None] = []
        for gold, answer in pairs:
            # Two plain numbers need no parser: compared exactly here, as math-verify would
            # (to its 6 decimal places), at a thousandth of the cost.
            g, a = plain_number(gold), plain_number(answer)
            if g is not None and a is not None:
                results.append(abs(g - a) < Fraction(1, 10**6) * max(1, abs(g)))
            else:
                results.append(self._check(gold, answer))
        return results

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, set()
        for worker in workers:
            worker.kill()


MATH = MathPool()
