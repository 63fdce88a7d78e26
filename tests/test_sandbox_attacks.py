"""Attacks on the code sandbox as a hostile model would write them: every one contained.

Each attack is written to succeed if the isolation layer were not there (the audit hook alone
let most of them through: issue 18), and each test checks the host afterwards, not only the
verdict.
"""

import os
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from conftest import run_python

from raspberry.verify import check
from raspberry.verify.sandbox import Limits

FAST = {"cpu_s": 3, "wall_s": 6, "memory_mb": 256, "output_bytes": 100_000}


def _check(body: str, tests: str = "assert solve() == 1"):
    answer = f"Here it is.\n```python\n{textwrap.dedent(body)}\n```"
    return check({"kind": "code", "tests": tests, "limits": FAST}, answer)


def _run(body: str):
    return run_python(textwrap.dedent(body), Limits(**FAST))


FORK_EXEC = """
import _posixsubprocess, os, sys
def spawn(argv):
    r, w = os.pipe()
    return _posixsubprocess.fork_exec(
        [os.fsencode(a) for a in argv], [os.fsencode(argv[0])], True, (), None, None,
        -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)
"""


def test_fork_exec_called_directly_cannot_start_anything():
    # The repro: no audit event, so only the kernel can refuse it.
    run = _run(FORK_EXEC + "spawn([sys.executable, '-c', 'print(42)'])\nprint('spawned')")
    assert not run.ok and "spawned" not in run.stdout
    assert "Operation not permitted" in run.stderr
    result = _check(FORK_EXEC + "def solve():\n    spawn([sys.executable, '-V'])\n    return 1")
    assert not result.passed and "Operation not permitted" in result.reason


def test_every_other_way_to_start_a_program_fails():
    attempts = {
        "subprocess": "import subprocess\nsubprocess.run(['/python/bin/python3', '-V'])",
        "os.system": "import os\nassert os.system('true') == 0",
        "os.execv": "import os, sys\nos.execv(sys.executable, [sys.executable, '-V'])",
        "posix_spawn": "import os, sys\nos.posix_spawn(sys.executable, ['x', '-V'], {})",
        "pty": "import pty, sys\npty.spawn([sys.executable, '-V'])",
        "fork": "import os\nif os.fork() == 0:\n    os._exit(0)",
        "multiprocessing": "import multiprocessing as m\np = m.Process(target=print)\np.start()",
    }
    for name, body in attempts.items():
        run = _run(body + "\nprint('escaped')")
        assert not run.ok and "escaped" not in run.stdout, (name, run)


def test_nothing_of_the_host_can_be_changed_or_read(tmp_path):
    target = tmp_path / "host.txt"
    target.write_text("host data")
    target.chmod(0o644)
    attempts = [
        f"import os\nos.link({str(target)!r}, 'mine')\nprint(open('mine').read())",
        f"import os\nos.remove({str(target)!r})",
        f"import os\nos.chmod({str(target)!r}, 0o777)",
        f"import os\nos.rename({str(target)!r}, 'moved')",
        f"import os\nos.mkdir({str(tmp_path / 'newdir')!r})",
        f"import os\nos.symlink('/', {str(tmp_path / 'link')!r})",
        f"print(open({str(target)!r}).read())",
        "print(open('/proc/1/environ').read())",
        "import os\nprint(os.listdir('/proc'))",
        "print(open('/etc/passwd').read())",
        "import os\nprint(os.listdir('/usr'))\nprint(os.listdir('/python'))",
    ]
    for body in attempts:
        run = _run(body)
        assert "host data" not in run.stdout and "root:" not in run.stdout, (body, run)
    assert target.read_text() == "host data" and (target.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host.txt"]


def test_the_sandbox_sees_only_its_own_folder():
    # Nothing of the host is mounted: the root holds only libraries, Python, /dev and a tmpfs
    # whose only file, the program, is gone once it is compiled.
    run = _run("import os\nprint(sorted(os.listdir('/')))")
    assert not run.ok  # listing / is refused by the hook; the mount namespace is the wall
    run = _run("import os\nprint(sorted(os.listdir('.')))")
    assert run.ok and run.stdout.strip() == "[]"


def test_what_it_writes_is_bounded_and_never_reaches_the_host_disk():
    """Many files each under the output limit once filled the host's /tmp (1 GB in 5 s); the
    folder is now a tmpfs of disk_mb."""
    before = shutil.disk_usage(tempfile.gettempdir()).used
    run = _run(
        "import os\nwritten = 0\ntry:\n    for i in range(200):\n"
        "        open(f'f{i}', 'wb').write(b'x' * 90_000)\n        written += 90_000\n"
        "except OSError as exc:\n    print(written, exc.errno)"
    )
    written, errno = map(int, run.stdout.split())
    assert errno == 28 and written <= Limits().disk_mb * 1024 * 1024, run
    assert shutil.disk_usage(tempfile.gettempdir()).used - before < 8 * 1024 * 1024


def _nobody_uids_of_launchers() -> list[int]:
    uids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes()
            text = status.read_text()
        except OSError:
            continue
        if b"Runs inside the sandbox" in cmdline and b"bwrap" not in cmdline.split(b"\0")[0]:
            uids.append(int(text.split("\nUid:")[1].split()[0]))
    return uids


def test_the_program_runs_as_nobody_on_the_host_too():
    """As root, the sandbox maps its nobody to the host's nobody: the host sees the program's
    process as uid 65534 while it runs."""
    seen: list[int] = []

    def watch():
        time.sleep(1)  # past the launcher's start (as root of its namespace) into the sleep
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not seen:
            seen.extend(_nobody_uids_of_launchers())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    run = _run("import os, time\nprint(os.getuid())\ntime.sleep(2)")
    watcher.join()
    assert run.ok and run.stdout.strip() == "65534"
    assert seen and set(seen) == {65534 if os.geteuid() == 0 else os.geteuid()}


def test_no_process_is_left_behind():
    marker = f"sandbox-leftover-{os.getpid()}"
    body = FORK_EXEC + (
        "import os\n"
        "try:\n"
        f"    spawn([sys.executable, '-c', 'import time; time.sleep(30) # {marker}'])\n"
        "except OSError:\n    pass\n"
        "try:\n    os.setsid()\nexcept OSError:\n    pass\n"
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=False).start()\n"
    )

    def processes() -> list[str]:
        ps = subprocess.run(["ps", "-eo", "uid,pid,stat,args"], capture_output=True, text=True)
        return ps.stdout.splitlines()

    def nobodys() -> dict[str, str]:  # pid -> state of the host's processes of uid 65534
        return {f[1]: f[2] for ln in processes() if (f := ln.split())[0] == "65534"}

    before = nobodys()
    started = time.monotonic()
    run = _run(body)
    assert time.monotonic() - started < FAST["wall_s"] + 3
    assert not run.ok  # its lingering thread kept it past the wall time
    left = {pid: state for pid, state in nobodys().items() if pid not in before}
    assert all(state.startswith("Z") for state in left.values()), left  # none is alive
    assert not any(marker in ln for ln in processes())
    # The dead pass to the host's init, which reaps them in its own time: soon, not at once.
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid: state for pid, state in nobodys().items() if pid not in before}
    assert not left, left


def test_the_end_of_tests_proof_cannot_be_read_or_forged():
    steal = """
    import gc, os, sys, types
    codes = [o.__code__ if isinstance(o, types.FunctionType) else o for o in gc.get_objects()]
    found = [c for o in codes if isinstance(o, types.CodeType) for c in o.co_consts
             if isinstance(c, str) and c.startswith('tests-done-')]
    f = sys._getframe()
    while f:
        found += [c for c in f.f_code.co_consts if isinstance(c, str) and 'tests-done' in c]
        f = f.f_back
    for c in found:
        print(c)
    print('tests-done-' + '0' * 32)
    sys.stdout.flush()
    os._exit(0)
    """
    result = _check(steal, tests="assert False, 'the tests ran'")
    assert not result.passed and "ended before its tests ran" in result.reason
    result = _check("import os\ndef solve():\n    os._exit(0)")
    assert not result.passed and "ended during a call" in result.reason


def test_an_object_that_equals_everything_does_not_pass():
    for body in (
        "class A:\n    def __eq__(self, other): return True\ndef solve(): return A()",
        "class I(int):\n    def __eq__(self, other): return True\ndef solve(): return I(5)",
        "class S(str):\n    def __eq__(self, other): return True\ndef solve(): return S('x')",
        "def solve():\n    import builtins\n"
        "    builtins.AssertionError = type('E', (Exception,), {})\n    return 2",
    ):
        result = _check(body, tests="assert solve() == 1\nassert not (solve() != 1)")
        assert not result.passed, body


def test_honest_answers_of_every_shape_still_pass():
    solution = """
    class Solution:
        def two_sum(self, nums, target):
            seen = {}
            for i, n in enumerate(nums):
                if target - n in seen:
                    return [seen[target - n], i]
                seen[n] = i
    def parse(text):
        if not text:
            raise ValueError('empty')
        return tuple(int(x) for x in text.split(','))
    def squares(n):
        for i in range(n):
            yield i * i
    LIMIT = {'a': 1, (2, 3): {4.5, None}}
    """
    tests = (
        "assert Solution().two_sum([2, 7, 11], 9) == [0, 1]\n"
        "assert parse('1,2') == (1, 2)\n"
        "try:\n    parse('')\nexcept ValueError as e:\n    assert 'empty' in str(e)\n"
        "else:\n    raise AssertionError('no error')\n"
        "assert list(squares(4)) == [0, 1, 4, 9]\n"
        "assert LIMIT == {'a': 1, (2, 3): {4.5, None}}\n"
        "s = Solution()\nassert s.two_sum([1, 2], 3) == [0, 1]\n"
    )
    result = _check(solution, tests)
    assert result.passed, result
