"""A seccomp filter for the code sandbox: no new program, no new process, no kernel tricks.

The sandbox's launcher installs it (prctl, no new privileges) before it reads the program, so it
binds everything the model's code does, native code included: unlike an audit hook,
`_posixsubprocess.fork_exec`, `ctypes` or a C extension cannot get around a kernel filter.
Threads stay allowed (clone with CLONE_THREAD); every other clone, fork, vfork and exec fails
with EPERM. clone3 answers ENOSYS, so the C library falls back to clone, whose flags the filter
can read. The program is classic BPF over `struct seccomp_data`, built here without libseccomp.
"""

from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS = 0x7FFF0000, 0x80000000
_ERRNO = 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg0's low word, little-endian)
CLONE_THREAD = 0x00010000

# Per machine: the audit arch, and the syscalls refused. Namespaces, mounts, tracing other
# processes, keyrings, BPF, io_uring (whose operations bypass seccomp) and kernel modules are
# refused beside process creation: none is needed to solve a problem, all widen the attack.
_X86_64 = {
    "arch": 0xC000003E,
    "clone": 56,
    "refused": {
        "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "unshare": 272, "setns": 308,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
        "request_key": 249, "kexec_load": 246, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "io_uring_setup": 425, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "pidfd_getfd": 438,
    },
}  # fmt: skip
_AARCH64 = {
    "arch": 0xC00000B7,
    "clone": 220,
    "refused": {
        "execve": 221, "execveat": 281, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "unshare": 97, "setns": 268, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "kexec_load": 104, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "io_uring_setup": 425,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "pidfd_getfd": 438,
    },
}  # fmt: skip
_MACHINES = {"x86_64": _X86_64, "amd64": _X86_64, "aarch64": _AARCH64, "arm64": _AARCH64}
_CLONE3 = 435  # the same number on both


class UnsupportedMachine(RuntimeError):
    pass


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def sandbox_filter(machine: str | None = None) -> bytes:
    """The compiled filter for this machine (`struct sock_filter[]`), as bwrap reads it."""
    table = _MACHINES.get((machine or platform.machine()).lower())
    if table is None:
        raise UnsupportedMachine(f"no seccomp filter for {machine or platform.machine()}")
    prog = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ, table["arch"], jt=1),
        _op(_RET, _KILL_PROCESS),  # another ABI (32-bit calls) would bypass the numbers below
        _op(_LD_W_ABS, _NR),
    ]
    if table is _X86_64:  # x32 syscalls carry bit 30: refused as a whole
        prog += [_op(_JGE, 0x40000000, jf=1), _op(_RET, _ERRNO | errno.EPERM)]
    for nr in table["refused"].values():
        prog += [_op(_JEQ, nr, jf=1), _op(_RET, _ERRNO | errno.EPERM)]
    prog += [_op(_JEQ, _CLONE3, jf=1), _op(_RET, _ERRNO | errno.ENOSYS)]
    prog += [
        _op(_JEQ, table["clone"], jf=3),
        _op(_LD_W_ABS, _ARG0),
        _op(_JSET, CLONE_THREAD, jt=1),
        _op(_RET, _ERRNO | errno.EPERM),  # a clone that is not a thread: a new process
        _op(_RET, _ALLOW),
    ]
    return b"".join(prog)
