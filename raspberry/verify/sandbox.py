"""Run model-written Python in isolation: the sandbox of the code verifier.

Each run gets throwaway folders, an environment with nothing in it (no keys), CPU-time,
wall-time, memory, output-size and process limits, and the isolation layer of isolation.py
(bubblewrap: namespaces, a near-empty root, a seccomp filter, the host's nobody). A `code`
check runs the answer and its tests in two such sandboxes: the tests call the answer's
functions through a pipe and get plain values back, so the answer can neither read nor forge
the line that proves the tests ran, nor return an object that equals anything. Where the
machine cannot isolate, nothing runs and the check fails saying why. docs/verification.md
says what this stops and what it cannot.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from raspberry.verify.isolation import SandboxUnavailable, sandboxed, setup_failure

TAIL = 2000  # characters of stdout/stderr kept in the result


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 1_000_000
    processes: int = 64  # tasks of the host's nobody (threads); new processes are refused anyway
    disk_mb: int = 16  # its writable folder, a tmpfs of its own (memory, not the host's disk)


_LIMIT_NAMES = tuple(f.name for f in fields(Limits))


# The most a question's spec may ask of the sandbox: more is clamped to this, and the check's
# reason says so. Specs come from files and from models; none may buy an answer minutes of
# CPU or gigabytes. A constant, not a config knob: every caller of check() is bounded by it,
# the CLI's `verify` and an RL trainer's reward included.
MAX_LIMITS = Limits(
    cpu_s=20, wall_s=30.0, memory_mb=2048, output_bytes=10_000_000, processes=64, disk_mb=64
)


def limits_of(raw: Any) -> tuple[Limits, list[str]]:
    """A spec's `limits` within MAX_LIMITS, and what was clamped. ValueError when a limit is
    unknown, not a number, or not above zero."""
    if not isinstance(raw, dict):
        raise ValueError('limits must be an object such as {"wall_s": 5}')
    values: dict[str, int | float] = {}
    clamped: list[str] = []
    for name, value in raw.items():
        if name not in _LIMIT_NAMES:
            raise ValueError(f"unknown limit {name!r}; known: {', '.join(_LIMIT_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ValueError(f"limits.{name} must be a number, not {value!r}")
        if value <= 0:
            raise ValueError(f"limits.{name} must be above 0, not {value:g}")
        bound = getattr(MAX_LIMITS, name)
        if value > bound:
            clamped.append(f"limits.{name} {value:g} clamped to {bound:g}")
            value = bound
        values[name] = math.ceil(value) if isinstance(bound, int) else float(value)
    return replace(Limits(), **values), clamped


class RunResult(BaseModel):
    ok: bool
    reason: str
    exit_code: int | None
    stdout: str
    stderr: str


_SIGNALS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGKILL: "killed (past its CPU time limit)",
    signal.SIGXFSZ: "output size limit exceeded",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGSYS: "killed by the seccomp filter",
}


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _reason(code: int, stderr: str) -> str:
    if code == 0:
        return "exit 0"
    if code > 128 and code - 128 in _SIGNALS:  # bubblewrap reports a signal as 128 + its number
        code = -(code - 128)
    if code < 0:
        return _SIGNALS.get(signal.Signals(-code), f"killed by signal {-code}")
    unavailable = setup_failure(stderr) if code in (1, 98) else None
    if unavailable:
        return unavailable
    if "MemoryError" in stderr:
        return "memory limit exceeded"
    if "File too large" in stderr:
        return "output size limit exceeded"
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    return f"exit {code}: {last[:300]}" if last else f"exit {code}"


class _Run:
    """One sandboxed launcher on its own folder: started, waited for, killed, read."""

    def __init__(self, stack: ExitStack, mode: str, program: str, limits: Limits, fds=()):
        # On the host: the program, and its stdout and stderr (bounded by output_bytes each).
        self.folder = Path(tempfile.mkdtemp(prefix="raspberry-sandbox-"))
        stack.callback(shutil.rmtree, self.folder, True)
        (self.folder / "main.py").write_text(program, encoding="utf-8")
        argv = [mode, json.dumps(asdict(limits)), *map(str, fds)]
        disk = limits.disk_mb * 1024 * 1024
        with sandboxed(self.folder / "main.py", disk, argv, tuple(fds)) as (cmd, pass_fds):
            with (
                (self.folder / "stdout").open("wb") as out,
                (self.folder / "stderr").open("wb") as err,
            ):
                self.proc = subprocess.Popen(
                    cmd,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    pass_fds=pass_fds,
                )
        stack.callback(self.kill)
        self.exit_code: int | None = None

    def wait(self, timeout: float) -> int | None:
        try:
            self.exit_code = self.proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            pass
        return self.exit_code

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # bwrap and all it holds, its namespace too
        except ProcessLookupError:
            pass
        self.proc.wait()

    def result(self, limits: Limits) -> RunResult:
        stdout, stderr = _tail(self.folder / "stdout"), _tail(self.folder / "stderr")
        code = self.exit_code
        if code is None:
            reason = f"wall time limit exceeded ({limits.wall_s:g} s)"
        else:
            reason = _reason(code, stderr)
        return RunResult(ok=code == 0, reason=reason, exit_code=code, stdout=stdout, stderr=stderr)


def _unavailable(exc: SandboxUnavailable) -> RunResult:
    return RunResult(ok=False, reason=f"sandbox unavailable: {exc}", exit_code=None, stdout="",
                     stderr="")  # fmt: skip


def run_tests(answer: str, tests: str, limits: Limits = Limits()) -> RunResult:
    """Run `tests` against the names `answer` defines, each in its own sandbox; ok only when
    the tests' process reaches its end, which it proves with a line the answer cannot know."""
    done = f"tests-done-{secrets.token_hex(16)}"
    with ExitStack() as stack:
        to_answer, from_answer = os.pipe(), os.pipe()
        ends = {*to_answer, *from_answer}  # closed once each: another thread may reuse a number
        stack.callback(_close_all, ends)
        try:
            server = _Run(stack, "serve", answer, limits, (to_answer[0], from_answer[1]))
            tester = _Run(
                stack, "test", f"{tests}\n\nprint({done!r})\n", limits,
                (from_answer[0], to_answer[1]),
            )  # fmt: skip
        except SandboxUnavailable as exc:
            return _unavailable(exc)
        _close_all(ends)  # each end now lives only in its sandbox
        deadline = time.monotonic() + limits.wall_s
        tester.wait(limits.wall_s)
        server.wait(min(1.0, deadline - time.monotonic()))  # it ends when the tests hang up
        tester.kill()
        server.kill()
        tested, served = tester.result(limits), server.result(limits)
        if tested.ok and tested.stdout.rstrip().endswith(done):
            return tested
        if tested.ok:
            return tested.model_copy(update={"ok": False, "reason": "the tests ended early"})
        if served.exit_code not in (0, None) or served.reason.startswith("sandbox unavailable"):
            return served.model_copy(update={"ok": False})  # the answer's own failure says why
        if tested.exit_code is None and served.exit_code is None:
            return served.model_copy(update={"ok": False})
        return tested


def _close_all(fds: set[int]) -> None:
    while fds:
        os.close(fds.pop())
