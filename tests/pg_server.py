"""A throwaway PostgreSQL server on loopback, for the tests and benchmarks of the shared gateway
state (raspberry/llm/state.py): initdb into a temporary folder, start on a free port, yield it,
stop and remove it after. Run as root, the server runs as the `postgres` user (it refuses root).
The tests of database faults stop, freeze and restart it."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


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


@dataclass
class PgServer:
    bins: Path
    folder: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://raspberry@127.0.0.1:{self.port}/raspberry"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(str(self.bins / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                 str(self.folder / "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(str(self.bins / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                     "stop")  # fmt: skip

    def _pids(self) -> list[int]:
        """The postmaster and every backend it started."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(main)],
                                  capture_output=True, text=True).stdout.split()  # fmt: skip
        return [main, *map(int, children)]

    def freeze(self) -> None:
        """Every process of the server stopped: connections stay open, nothing answers."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)


@contextmanager
def running_postgres() -> Iterator[PgServer]:
    """A new, empty server with a database `raspberry` of the user `raspberry`."""
    bins = bin_dir()
    if bins is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="raspberry-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PgServer(bins, folder, _free_port(), as_user)
    try:
        server.run(str(bins / "initdb"), "-D", str(server.data), "-A", "trust", "-U",
                   "raspberry", "-E", "UTF8")  # fmt: skip
        server.start()
        deadline = time.time() + 30
        while True:
            try:
                server.run(str(bins / "createdb"), "-h", "127.0.0.1", "-p", str(server.port),
                           "-U", "raspberry", "raspberry")  # fmt: skip
                break
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        try:
            server.thaw()
        except (OSError, ValueError):
            pass  # not running
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
