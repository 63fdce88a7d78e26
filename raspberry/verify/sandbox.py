"""Run model-written Python in a separate, limited process: the sandbox of the code verifier.

Threat model (docs/verification.md says more): the code is untrusted but not a targeted kernel
exploit. Each run gets a throwaway folder, an environment with nothing in it (no keys), CPU-time,
wall-time, memory, output-size and process limits, a new network namespace where the kernel
allows it, an unprivileged user when started as root, and an audit hook that refuses process
creation, sockets, ctypes and file access outside its folder and the standard library. A
process that outlives its wall time is killed with its whole process group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
NOBODY = 65534
TAIL = 2000  # characters of stdout/stderr kept in the result


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 1_000_000
    processes: int = 64  # tasks of the sandbox's user; fork itself is refused by the audit hook
    require_network_isolation: bool = False


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
    if code < 0:
        return _SIGNALS.get(signal.Signals(-code), f"killed by signal {-code}")
    if code == 97:
        return "the sandbox could not isolate the network"
    if "MemoryError" in stderr:
        return "memory limit exceeded"
    if "File too large" in stderr:
        return "output size limit exceeded"
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    return f"exit {code}: {last[:300]}" if last else f"exit {code}"


def run_python(code: str, limits: Limits = Limits()) -> RunResult:
    """Run `code` as a script in the sandbox; ok when it exits 0 within every limit."""
    folder = Path(tempfile.mkdtemp(prefix="raspberry-sandbox-"))
    try:
        (folder / "main.py").write_text(code, encoding="utf-8")
        if os.geteuid() == 0:  # the launcher may drop to nobody, who must own the folder
            for path in (folder, folder / "main.py"):
                os.chown(path, NOBODY, NOBODY)
        out, err = folder / "stdout", folder / "stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(asdict(limits))],
                cwd=folder,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
            )
            try:
                exit_code: int | None = proc.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                exit_code = None
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind, too
                except ProcessLookupError:
                    pass
                proc.wait()
        stdout_text, stderr_text = _tail(out), _tail(err)
        if exit_code is None:
            reason = f"wall time limit exceeded ({limits.wall_s:g} s)"
        else:
            reason = _reason(exit_code, stderr_text)
        return RunResult(
            ok=exit_code == 0,
            reason=reason,
            exit_code=exit_code,
            stdout=stdout_text,
            stderr=stderr_text,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
