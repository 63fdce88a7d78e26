"""Prefect's API for a command: the configured server, or a temporary one that dies with us.

Without PREFECT_API_URL, Prefect starts an ephemeral API server as a child process and stops it
at exit; a SIGKILL of the command leaves that ~200 MB server running for good. So the command
starts the same server itself (the same uvicorn app and settings as Prefect's ephemeral one),
with the kernel told to kill it when its parent dies, and points PREFECT_API_URL at it before
Prefect is imported. Prefect then uses it as any server.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from raspberry.errors import RaspberryError
from raspberry.processes import stop

PR_SET_PDEATHSIG = 1


def _dies_with(parent: int) -> None:
    """Runs in the child before exec: SIGKILL when the parent dies (or if it already has)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api_server() -> Iterator[str | None]:
    """Yield the API URL to use: PREFECT_API_URL as set, or a temporary server's. Enter it before
    anything imports Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None
    port = _free_port()
    parent = os.getpid()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(spec.origin).parent.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],  # fmt: skip
        env={
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        },
        preexec_fn=lambda: _dies_with(parent),  # noqa: PLW1509 - no threads yet at this point
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(proc, url)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        _drain_prefect()
        os.environ.pop("PREFECT_API_URL", None)
        stop(proc)


def _drain_prefect() -> None:
    """Send Prefect's queued logs and events before the server they go to stops (as Prefect's
    own test harness does); otherwise they fail at exit with a connection error."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=10)
        except Exception:  # noqa: BLE001 - a log that cannot be sent must not fail the command
            continue


def _wait_healthy(proc: subprocess.Popen, url: str) -> None:
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RaspberryError(f"the temporary Prefect server exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RaspberryError(
        f"the temporary Prefect server did not answer in {timeout:.0f} s; raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or run `prefect server start` and set "
        "PREFECT_API_URL"
    )
