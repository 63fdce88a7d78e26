"""The sandbox's isolation layer: bubblewrap, a user namespace and a seccomp filter.

Every sandboxed program starts as
`bwrap <namespaces> <a near-empty root> python -I -S -c <launcher> ...`:
- new user, PID, network, IPC, UTS and cgroup namespaces: it sees no other process, no network
  interface but a down loopback, and its own hostname;
- a root of bubblewrap's own holding only the shared libraries (/usr/lib*), the Python
  installation (read-only, at /python), the loader's cache, /dev's harmless nodes and a tmpfs
  of a bounded size at /sandbox holding a copy of the program: no other file of /etc, no
  /home, /proc, /tmp or /work, no program but Python, and no byte written to the host's disk;
- the seccomp filter of seccomp.py, which the launcher installs before the program is read: no
  process or program can be started from then on, whatever the way;
- a user id that is nobody's on the host too. As root, the user namespace is made first by
  `unshare --user` and mapped here (host root to its root, host nobody to its nobody), so that
  bubblewrap can mount a Python that only root can reach (one under /root); the launcher then
  becomes nobody and loses every capability before the program runs. As another user, bwrap
  makes the namespace itself and the program runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path

from raspberry.verify.seccomp import UnsupportedMachine, sandbox_filter

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
PYTHON_DEST, FOLDER_DEST = "/python", "/sandbox"
NOBODY = 65534
HINT = "install bubblewrap (`make sandbox`, or apt-get install bubblewrap)"


class SandboxUnavailable(RuntimeError):
    """This machine cannot isolate model-written code, so none is run."""


def _interpreter() -> tuple[str, str]:
    """The base Python installation and its interpreter's path relative to it."""
    prefix = os.path.realpath(sys.base_prefix)
    exe = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    if not exe.startswith(prefix + os.sep):
        exe = os.path.join(prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    return prefix, os.path.relpath(exe, prefix)


def _system_binds() -> list[str]:
    # Folders that bwrap would make as parents of a bind are not open to nobody: make them first.
    args: list[str] = ["--dir", "/usr", "--dir", "/etc"]
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if os.path.isfile("/etc/ld.so.cache"):  # where the loader finds libraries (libffi, ...)
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


@contextmanager
def _user_namespace() -> Iterator[int]:
    """An fd of a new user namespace mapping host root and nobody to themselves (root only)."""
    helper = subprocess.Popen(["unshare", "--user", "cat"], stdin=subprocess.PIPE)
    try:
        ours = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{helper.pid}/ns/user") == ours:
            if helper.poll() is not None or time.monotonic() > deadline:
                raise SandboxUnavailable(f"cannot make a user namespace with unshare; {HINT}")
            time.sleep(0.001)
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{helper.pid}/{name}").write_text(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
        fd = os.open(f"/proc/{helper.pid}/ns/user", os.O_RDONLY)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot make a user namespace ({exc}); {HINT}") from exc
    finally:
        assert helper.stdin is not None
        helper.stdin.close()
    try:
        yield fd  # the namespace lives while this fd is open, after its helper has gone
    finally:
        os.close(fd)
        helper.wait()


@cache
def _fixed() -> tuple[str, str, str, str, str, tuple[str, ...]]:
    """What every sandbox of this process shares: bwrap, the filter (hex), the Python
    installation, its interpreter within it, the launcher's source and the system binds. Raises
    SandboxUnavailable where this machine cannot isolate (nothing is cached then)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed; {HINT}")
    try:
        bpf = sandbox_filter()
    except UnsupportedMachine as exc:
        raise SandboxUnavailable(str(exc)) from exc
    prefix, exe = _interpreter()
    launcher = LAUNCHER.read_text(encoding="utf-8")
    return bwrap, bpf.hex(), prefix, exe, launcher, tuple(_system_binds())


@contextmanager
def sandboxed(
    program: Path, disk_bytes: int, argv: list[str], fds: tuple[int, ...] = ()
) -> Iterator[tuple]:
    """The command that runs the launcher with `argv` on a copy of `program` (main.py of a
    tmpfs of `disk_bytes` at /sandbox, the only place it can write, so it cannot fill the
    host's disk), and the fds to pass it. Raises SandboxUnavailable where this machine cannot
    isolate it."""
    bwrap, bpf, prefix, exe, launcher, binds = _fixed()
    source = os.open(program, os.O_RDONLY)
    with (
        _user_namespace() if os.geteuid() == 0 else nullcontext() as userns,
        os.fdopen(source, "rb"),
    ):
        identity = (
            ["--userns", str(userns), "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            if userns is not None
            else ["--unshare-user"]
        )
        cmd = [
            bwrap, *identity,
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", "/nonexistent", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "LD_LIBRARY_PATH", f"{PYTHON_DEST}/lib",
            *binds,
            "--ro-bind", prefix, PYTHON_DEST,
            "--dev", "/dev",
            "--perms", "0777", "--size", str(disk_bytes), "--tmpfs", FOLDER_DEST,
            "--perms", "0644", "--file", str(source), f"{FOLDER_DEST}/main.py",
            "--chdir", FOLDER_DEST,
            f"{PYTHON_DEST}/{exe}", "-I", "-S", "-c", launcher, argv[0], argv[1], bpf, *argv[2:],
        ]  # fmt: skip
        yield cmd, (*fds, source, *([userns] if userns is not None else []))


def setup_failure(stderr: str) -> str | None:
    """bubblewrap's or the launcher's own error, when the sandbox could not be set up at all."""
    for line in stderr.splitlines():
        if line.startswith(("bwrap: ", "sandbox: cannot install")):
            return f"sandbox unavailable: {line.split(': ', 1)[1].strip()}; {HINT}"
    return None
