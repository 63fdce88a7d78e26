"""Errors a user can act on. Each carries the process exit code the CLI should use."""

from __future__ import annotations


class RaspberryError(Exception):
    """A problem with the user's input: config, files, keys. Exit code 2."""

    exit_code = 2


class ConfigError(RaspberryError):
    """The build config is missing, malformed or inconsistent."""


class StoreError(RaspberryError):
    """A build folder, shard or manifest is missing, corrupt or belongs to another build."""


class ProviderError(Exception):
    """A model provider failed in a way retries will not fix (bad request, auth, circuit open)."""


class BenchmarkFileError(RaspberryError):
    """A benchmark file is missing, malformed, or has a question without a usable answer."""


class BudgetExceeded(Exception):
    """The build has spent its budget.max_usd; nothing more is sent (what was received is kept)."""


class DiskFull(RaspberryError):
    """The disk under the build or the request cache is full. Exit code 3."""

    exit_code = 3


class StateUnavailable(RaspberryError):
    """The gateway's state database did not answer: stopped, frozen or unreachable. Exit 3:
    nothing written is lost, and a rerun continues once the database is back."""

    exit_code = 3
    SIGN = "the gateway state database "  # how its message begins, wherever it is carried

    @classmethod
    def of(cls, where: str, why: str) -> StateUnavailable:
        return cls(
            f"{cls.SIGN}{where} did not answer ({why}); every answer received is kept: check "
            "that the database runs and is reachable, then rerun the build"
        )


# How a full disk shows in an error's text: the OS (ENOSPC, EDQUOT) and SQLite.
DISK_FULL_SIGNS = ("No space left on device", "Disk quota exceeded", "database or disk is full")


def disk_full(text: str) -> bool:
    return any(sign in text for sign in DISK_FULL_SIGNS)
