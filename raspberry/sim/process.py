"""Run the simulated server as a child process for the length of a build."""

from __future__ import annotations

import contextlib
import selectors
import subprocess
import sys
from collections.abc import Iterator

from raspberry.config import BuildConfig, SimConfig
from raspberry.errors import ProviderError
from raspberry.processes import stop


def sim_args(sim: SimConfig) -> list[str]:
    args = [
        "--latency-ms",
        str(sim.latency_ms),
        "--jitter-ms",
        str(sim.jitter_ms),
        "--error-rate",
        str(sim.error_rate),
        "--rate-limit-rate",
        str(sim.rate_limit_rate),
        "--hang-rate",
        str(sim.hang_rate),
        "--empty-rate",
        str(sim.empty_rate),
        "--malformed-judge-rate",
        str(sim.malformed_judge_rate),
        "--wrong-first-prob",
        str(sim.wrong_first_prob),
        "--wrong-retry-prob",
        str(sim.wrong_retry_prob),
        "--batch-delay-s",
        str(sim.batch_delay_s),
        "--batch-error-rate",
        str(sim.batch_error_rate),
        "--batch-expire-rate",
        str(sim.batch_expire_rate),
        "--seed",
        str(sim.seed),
    ]
    args += [a for text in sim.fail_containing for a in ("--fail-containing", text)]
    return args + (["--rpm", str(sim.rpm)] if sim.rpm else [])


@contextlib.contextmanager
def running_sim(sim: SimConfig, startup_timeout_s: float = 60.0, port: int = 0) -> Iterator[str]:
    """Start `raspberry sim serve` on a loopback port (0: a free one); yield its base URL; stop it
    after."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "raspberry.cli",
            "sim",
            "serve",
            "--port",
            str(port),
            "--exit-with-parent",
            *sim_args(sim),
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


def sim_for(config: BuildConfig) -> contextlib.AbstractContextManager[str | None]:
    """The simulator for a config with a `sim:` section (its URL), else nothing (None)."""
    return running_sim(config.sim) if config.sim else contextlib.nullcontext(None)
