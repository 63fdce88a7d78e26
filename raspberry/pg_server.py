"""A throwaway PostgreSQL server on loopback, for the tests and benchmarks of the shared gateway
state (llm/state.py): initdb into a temporary folder, start on a free port, yield its URL, stop
and remove it after. Run as root, the server runs as the `postgres` user (it refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from raspberry.errors import RaspberryError


def bin_dir() -> Path | None:
    """The folder of PostgreSQL's server programs, or None when it is not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_postgres() -> Iterator[str]:
    """Yield postgresql://raspberry@127.0.0.1:PORT/raspberry of a new, empty server."""
    bins = bin_dir()
    if bins is None:
        raise RaspberryError("PostgreSQL is not installed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="raspberry-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True)

    try:
        run(str(bins / "initdb"), "-D", str(data), "-A", "trust", "-U", "raspberry", "-E", "UTF8")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bins / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
            "-w", "start")  # fmt: skip
        deadline = time.time() + 30
        while True:
            try:
                run(str(bins / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                    "raspberry", "raspberry")  # fmt: skip
                break
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql://raspberry@127.0.0.1:{port}/raspberry"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
