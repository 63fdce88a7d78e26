"""Runs inside the sandbox, before the untrusted program: see raspberry/verify/sandbox.py.

Started by bubblewrap as `python -I -S -c <this file> MODE LIMITS_JSON FILTER [IN_FD OUT_FD]`
in the sandbox's folder, which holds `main.py`. It sets the resource limits, drops to nobody
where it starts as root (the user namespace maps nobody to the host's nobody), installs the
seccomp FILTER (hex; no new process or program from here on), installs an audit hook
that turns file access outside the folder and the standard library into a clear error, deletes
main.py once compiled, and then, by MODE:

- run: runs main.py as a script.
- serve: runs main.py (the answer), then answers calls from the tests' process over two pipes.
- test: runs main.py (the tests) against the answer's names, which are proxies that call the
  answer's process; only plain values cross (ints, strings, lists, ...), by value, so an object
  of the answer's that claims to equal anything stays a proxy and equals nothing but itself.
  Only the names the tests read are bound, never a builtin's or a standard module's: an answer
  that defines its own `len`, `sorted`, `AssertionError` or `math` cannot change what the tests
  mean.

Standard library only: site-packages are not in the sandbox.
"""

import builtins
import json
import os
import resource
import sys

NOBODY = 65534
MAX_MESSAGE = 64 * 1024 * 1024


def _limit(kind, value, hard=None):
    resource.setrlimit(kind, (value, value if hard is None else hard))


def _seccomp(program):
    """Install the filter of seccomp.py on this process and all it could start (irrevocably)."""
    import ctypes

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    code = ctypes.create_string_buffer(program, len(program))
    prog = Program(len(program) // 8, ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
        # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER
        sys.stderr.write(
            f"sandbox: cannot install the seccomp filter (errno {ctypes.get_errno()})\n"
        )
        os._exit(98)


def _guard(root):
    readable = tuple(
        os.path.realpath(p) + os.sep for p in {sys.base_prefix, sys.prefix, sys.exec_prefix}
    ) + (root + os.sep,)
    devices = {"/dev/null", "/dev/urandom", "/dev/zero"}
    refused = (
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
        "os.kill", "os.killpg", "subprocess.Popen", "pty.spawn", "socket.", "ctypes.",
        "sys.addaudithook", "os.chdir", "os.putenv",
    )  # fmt: skip
    paths = {"open", "os.listdir", "os.scandir", "os.link", "os.symlink", "os.rename",
             "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
             "os.utime", "shutil.copyfile", "shutil.rmtree"}  # fmt: skip

    def hook(event, args):
        # A clear error before the kernel's: the mount namespace is what really confines files.
        if event.startswith(refused):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event not in paths:
            return
        for path in args[:2] if event in ("os.link", "os.symlink", "os.rename") else args[:1]:
            if path is None or isinstance(path, int):
                continue
            real = os.path.realpath(os.fsdecode(path))
            writes = (
                event != "open"
                or any(c in (args[1] or "") for c in "wax+")
                or bool((args[2] or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))
            )
            if event in ("os.listdir", "os.scandir"):
                writes = False
            inside = (real + os.sep).startswith(root + os.sep)
            if (writes and not inside) or not (
                inside or real in devices or (real + os.sep).startswith(readable)
            ):
                raise PermissionError(f"sandbox: access to {real} is not allowed")

    sys.addaudithook(hook)


# Values cross between the answer's and the tests' processes as tagged JSON: only exact plain
# types (a subclass of int with its own __eq__ is not an int here), anything else by reference.
def encode(value, refs):
    kind = type(value)
    if value is None:
        return ["n"]
    if kind is bool:
        return ["b", value]
    if kind is int:
        return ["i", str(value)]
    if kind is float:
        return ["f", repr(value)]
    if kind is complex:
        return ["c", repr(value.real), repr(value.imag)]
    if kind is str:
        return ["s", value]
    if kind is bytes:
        return ["y", value.hex()]
    if kind in (list, tuple, set, frozenset):
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[kind]
        return [tag, [encode(v, refs) for v in value]]
    if kind is dict:
        return ["d", [[encode(k, refs), encode(v, refs)] for k, v in value.items()]]
    if kind is Remote:
        return ["r", value._ref, value._kind]
    if refs is None:
        raise TypeError(f"only plain values can be passed to the answer, not {kind.__name__}")
    refs.append(value)
    return ["r", len(refs) - 1, kind.__name__]


def decode(item, resolve):
    tag = item[0]
    if tag == "n":
        return None
    if tag == "b":
        return bool(item[1])
    if tag == "i":
        return int(item[1])
    if tag == "f":
        return float(item[1])
    if tag == "c":
        return complex(float(item[1]), float(item[2]))
    if tag == "s":
        return str(item[1])
    if tag == "y":
        return bytes.fromhex(item[1])
    if tag in ("l", "t", "S", "F"):
        kind = {"l": list, "t": tuple, "S": set, "F": frozenset}[tag]
        return kind(decode(v, resolve) for v in item[1])
    if tag == "d":
        return {decode(k, resolve): decode(v, resolve) for k, v in item[1]}
    if tag == "r":
        return resolve(item)
    raise ValueError(f"bad value tag {tag!r}")


class Channel:
    """One JSON message a line, each way; bound to the os functions as they were at start."""

    def __init__(self, fd_in, fd_out):
        self._in, self._out = os.fdopen(fd_in, "rb"), fd_out
        self._write = os.write

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[self._write(self._out, data) :]

    def receive(self):
        line = self._in.readline(MAX_MESSAGE)
        return json.loads(line) if line.endswith(b"\n") else None


def serve(code, channel):
    names = {"__name__": "__main__", "__builtins__": builtins}
    exec(code, names)
    refs = []
    ops = {
        "names": lambda obj, _: {
            k: v for k, v in names.items() if not k.startswith("__") and k != "__builtins__"
        },
        "call": lambda obj, m: obj(*m["args"], **m["kwargs"]),
        "getattr": lambda obj, m: getattr(obj, m["name"]),
        "getitem": lambda obj, m: obj[m["key"]],
        "len": lambda obj, _: len(obj),
        "list": lambda obj, _: list(obj),
        "bool": lambda obj, _: bool(obj),
    }
    while (message := channel.receive()) is not None:
        try:
            message = decode(message, lambda item: refs[item[1]])
            obj = refs[message["ref"]] if "ref" in message else None
            reply = {"ok": encode(ops[message["op"]](obj, message), refs)}
        except Exception as exc:  # the tests' process raises it in its own place
            reply = {"error": [type(exc).__name__, str(exc)[:2000]]}
        channel.send(reply)


class Remote:
    """An object of the answer's, reached by reference; compares equal to nothing else."""

    __slots__ = ("_ref", "_kind")

    def __init__(self, ref, kind):
        self._ref, self._kind = ref, kind

    def __call__(self, *args, **kwargs):
        return _ask(op="call", ref=self._ref, args=list(args), kwargs=kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _ask(op="getattr", ref=self._ref, name=name)

    def __getitem__(self, key):
        return _ask(op="getitem", ref=self._ref, key=key)

    def __len__(self):
        return _ask(op="len", ref=self._ref)

    def __iter__(self):
        return iter(_ask(op="list", ref=self._ref))

    def __bool__(self):
        return _ask(op="bool", ref=self._ref)

    def __repr__(self):
        return f"<the answer's {self._kind} object>"


_ask = None  # the tests' process sets it to its channel's request function


class RemoteError(Exception):
    pass


class AnswerEnded(BaseException):
    """Not an Exception: tests that catch Exception around a call must not swallow the answer's
    exit (an answer that exits whenever called would otherwise pass such tests)."""


def test(code, channel):
    global _ask

    def ask(**message):
        try:
            channel.send(encode(message, None))
            reply = channel.receive()
        except BrokenPipeError:
            reply = None
        if reply is None:
            raise AnswerEnded(
                "the program ended before its tests ran"
                if message["op"] == "names"
                else "the answer's process ended during a call"
            )
        if "error" in reply:
            name, text = reply["error"]
            kind = getattr(builtins, name, None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(text)
            raise RemoteError(f"{name}: {text}")
        return decode(reply["ok"], lambda item: Remote(item[1], item[2]))

    _ask = ask
    names = {"__name__": "__main__", "__builtins__": builtins}
    wanted = _read_names(code)
    answer = ask(op="names")
    # A builtin or a standard module the tests read is the real one (the tests import what they
    # use); everything else they read comes from the answer.
    reserved = set(dir(builtins)) | set(sys.stdlib_module_names)
    names.update({k: v for k, v in answer.items() if k in wanted and k not in reserved})
    exec(code, names)


def _read_names(code):
    """Every global name the tests' code (and the functions and classes in it) reads."""
    found, todo = set(), [code]
    while todo:
        current = todo.pop()
        found.update(current.co_names)
        todo.extend(c for c in current.co_consts if isinstance(c, type(code)))
    return found


def main():
    mode, limits = sys.argv[1], json.loads(sys.argv[2])
    root = os.path.realpath(os.getcwd())
    _limit(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)  # SIGXCPU, then SIGKILL
    _limit(resource.RLIMIT_AS, limits["memory_mb"] * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, limits["output_bytes"])
    _limit(resource.RLIMIT_CORE, 0)
    if os.geteuid() == 0:  # root of the sandbox's user namespace: become its nobody for good
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _limit(resource.RLIMIT_NPROC, limits["processes"])
    _seccomp(bytes.fromhex(sys.argv[3]))
    channel = Channel(int(sys.argv[4]), int(sys.argv[5])) if mode != "run" else None
    with open("main.py", encoding="utf-8") as f:
        code = compile(f.read(), "main.py", "exec")
    os.remove("main.py")  # the program cannot read its own source (and what the checker added)
    sys.argv = ["main.py"]
    sys.path[:] = [p for p in sys.path if p and not p.startswith(root)]
    _guard(root)
    if mode == "run":
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    elif mode == "serve":
        serve(code, channel)
    else:
        test(code, channel)


main()
