"""Runs inside the sandbox's process, before the untrusted program: see raspberry/verify/sandbox.py.

Started as `python -I -S sandbox_launcher.py LIMITS_JSON` in a throwaway folder holding
`main.py`. It sets the resource limits, leaves the network (a new network namespace, where the
kernel allows it), drops root for an unprivileged user, installs an audit hook that refuses
process creation, sockets, native code and file access outside the folder and the standard
library, and then runs main.py. Standard library only: site-packages are not on the path.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
NOBODY = 65534


def _limit(kind: int, value: int, hard: int | None = None) -> None:
    resource.setrlimit(kind, (value, value if hard is None else hard))


def _others_can_read(path: str) -> bool:
    """Every folder from / down to path can be entered by any user."""
    parts = os.path.realpath(path).split(os.sep)
    folders = [os.sep + os.path.join(*parts[1:i]) for i in range(2, len(parts) + 1)]
    return all(os.stat(f).st_mode & 0o001 for f in [os.sep, *folders])


def _leave_network() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    flags = [CLONE_NEWNET] if os.geteuid() == 0 else [CLONE_NEWUSER | CLONE_NEWNET]
    return any(libc.unshare(f) == 0 for f in flags)


def _guard(root: str) -> None:
    readable = tuple(
        os.path.realpath(p) + os.sep for p in {sys.base_prefix, sys.prefix, sys.exec_prefix}
    ) + (root + os.sep,)
    devices = {"/dev/null", "/dev/urandom", "/dev/zero"}
    refused = (
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.exec",
        "os.system",
        "os.kill",
        "os.killpg",
        "subprocess.Popen",
        "pty.spawn",
        "socket.",
        "ctypes.",
        "sys.addaudithook",
        "os.chdir",
        "os.putenv",
    )

    def hook(event: str, args: tuple) -> None:
        if event.startswith(refused):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event in ("open", "os.listdir", "os.scandir") and args and args[0] is not None:
            path = args[0]
            if isinstance(path, int):
                return
            real = os.path.realpath(os.fsdecode(path))
            writes = False
            if event == "open":
                mode, flags = (args[1] or ""), (args[2] or 0)
                writes = any(c in mode for c in "wax+") or bool(
                    flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND)
                )
            inside = (real + os.sep).startswith(root + os.sep)
            if (writes and not inside) or not (
                inside or real in devices or (real + os.sep).startswith(readable)
            ):
                raise PermissionError(f"sandbox: access to {real} is not allowed")

    sys.addaudithook(hook)


def main() -> None:
    limits = json.loads(sys.argv[1])
    root = os.path.realpath(os.getcwd())
    _limit(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)  # SIGXCPU, then SIGKILL
    _limit(resource.RLIMIT_AS, limits["memory_mb"] * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, limits["output_bytes"])
    _limit(resource.RLIMIT_CORE, 0)
    isolated = _leave_network()
    if os.geteuid() == 0 and _others_can_read(sys.base_prefix):
        # Root ignores the process limit and may read anything; nobody does not. Where nobody
        # cannot reach the standard library (a Python under /root), root is kept and the audit
        # hook below is what guards files and process creation.
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _limit(resource.RLIMIT_NPROC, limits["processes"])
    if limits["require_network_isolation"] and not isolated:
        sys.stderr.write("sandbox: cannot leave the network on this kernel\n")
        sys.exit(97)
    with open("main.py", encoding="utf-8") as f:
        code = compile(f.read(), "main.py", "exec")
    os.remove("main.py")  # the program cannot read its own source (and what the checker added)
    sys.argv = ["main.py"]
    sys.path[:] = [p for p in sys.path if p and not p.startswith(root)]
    _guard(root)
    exec(code, {"__name__": "__main__", "__builtins__": __builtins__})


main()
