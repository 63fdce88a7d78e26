"""The code sandbox under attack: every attempt contained and reported as a failed check."""

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import run_python

from raspberry.verify import check
from raspberry.verify.sandbox import Limits

FAST = {"cpu_s": 2, "wall_s": 4, "memory_mb": 256, "output_bytes": 100_000}


def _answer(body: str) -> str:
    return f"Here is my solution.\n```python\n{body}\n```"


def _check(body: str, tests: str = "assert solve() == 1"):
    return check({"kind": "code", "tests": tests, "limits": FAST}, _answer(body))


def test_reading_files_outside_the_sandbox(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    for path in (str(secret), "/etc/passwd", str(Path.home() / ".bashrc"), "../../etc/hostname"):
        result = _check(f"def solve():\n    print(open({path!r}).read())\n    return 1")
        assert not result.passed and "not allowed" in result.reason, (path, result)


def test_opening_a_socket():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(5)
    waiter = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    waiter.start()
    result = _check(
        "import socket\n"
        f"def solve():\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    return 1"
    )
    waiter.join(6)
    server.close()
    assert not result.passed and "socket" in result.reason
    assert accepted == [None]  # nothing ever connected


def _accept(server: socket.socket):
    try:
        conn, _ = server.accept()
        conn.close()
        return "connected"
    except OSError:
        return None


def test_a_fork_bomb():
    started = time.monotonic()
    result = _check("import os\ndef solve():\n    while True:\n        os.fork()")
    assert not result.passed and "os.fork is not allowed" in result.reason
    assert time.monotonic() - started < 10


def test_allocating_10_gib():
    result = _check("def solve():\n    block = bytearray(10 * 1024**3)\n    return 1")
    assert not result.passed and "memory limit" in result.reason


def test_an_endless_loop():
    started = time.monotonic()
    result = _check("def solve():\n    while True:\n        pass")
    assert not result.passed and "CPU time limit" in result.reason
    assert time.monotonic() - started < FAST["wall_s"] + 2


def test_sleeping_forever_meets_the_wall_clock():
    result = _check("import time\ndef solve():\n    time.sleep(3600)")
    assert not result.passed and "wall time limit" in result.reason


def test_printing_1_gib():
    started = time.monotonic()
    result = _check("import sys\ndef solve():\n    sys.stdout.write('x' * 2**30)\n    return 1")
    assert not result.passed and ("output size" in result.reason or "memory" in result.reason)
    result = _check("def solve():\n    while True:\n        print('x' * 10000)")
    assert not result.passed and "output size" in result.reason
    assert time.monotonic() - started < 15


def test_reading_an_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-must-not-leak-42")
    run = run_python(
        "import os\nprint(dict(os.environ))\nassert 'OPENAI_API_KEY' in os.environ", Limits()
    )
    assert not run.ok and "sk-test-must-not-leak-42" not in run.stdout + run.stderr
    result = _check("import os\ndef solve():\n    return len(os.environ['OPENAI_API_KEY'])")
    assert not result.passed and "KeyError" in result.reason


def test_starting_a_process_and_calling_native_code():
    for body in (
        "import subprocess\ndef solve():\n    subprocess.run(['id'])\n    return 1",
        "import os\ndef solve():\n    os.system('id')\n    return 1",
        "import ctypes\ndef solve():\n    ctypes.CDLL(None).system(b'id')\n    return 1",
    ):
        result = _check(body)
        assert not result.passed and "not allowed" in result.reason, (body, result)


def test_exiting_early_does_not_skip_the_tests():
    for body in ("import sys\nsys.exit(0)", "import os\nos._exit(0)"):
        result = _check(body, tests="assert False, 'the tests ran'")
        assert not result.passed and "ended before its tests ran" in result.reason


def test_the_host_is_unharmed_and_the_sandbox_leaves_nothing():
    before = set(Path(tempfile.gettempdir()).glob("raspberry-sandbox-*"))
    result = _check("def solve():\n    open('scratch.txt', 'w').write('ok')\n    return 1")
    assert result.passed  # writing inside its own folder is allowed
    assert set(Path(tempfile.gettempdir()).glob("raspberry-sandbox-*")) == before
    assert os.getcwd() and Path("pyproject.toml").exists()


@pytest.mark.parametrize("workers", [4])
def test_concurrent_runs_do_not_interfere(workers):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [f"def solve():\n    return {i % 2}" for i in range(workers * 2)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(_check, bodies))
    assert [r.passed for r in results] == [i % 2 == 1 for i in range(workers * 2)]
