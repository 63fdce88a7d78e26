"""Child processes a command starts for itself (the simulator, a temporary Prefect server)."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Ask the child to stop, and kill it if it has not within grace_s."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
