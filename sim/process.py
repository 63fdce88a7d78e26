"""Run the simulated server as a child process for the length of a build."""

from __future__ import annotations

import contextlib
import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from raspberry_sim.config import SimConfig, settings

from raspberry.errors import ProviderError
from raspberry.processes import stop


@contextlib.contextmanager
def running_sim(sim: SimConfig, startup_timeout_s: float = 60.0, port: int = 0) -> Iterator[str]:
    """Start the simulated server on a loopback port (0: a free one); yield its base URL; stop
    it after."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "raspberry_sim.server",
            "--port",
            str(port),
            "--exit-with-parent",
            "--settings",
            sim.model_dump_json(),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        line = proc.stdout.readline() if selector.select(startup_timeout_s) else ""  # type: ignore[union-attr]
        if not line.startswith("listening on "):
            raise ProviderError(f"the simulated server did not start (exit code {proc.poll()})")
        yield line.split()[-1]
    finally:
        stop(proc)


def sim_for(section: Mapping[str, Any] | None) -> contextlib.AbstractContextManager[str | None]:
    """The simulator of a config's `sim:` section (its URL), or nothing (None) without one; a
    section the simulator cannot take is a one-line ConfigError before anything starts."""
    return running_sim(settings(section)) if section is not None else contextlib.nullcontext(None)
