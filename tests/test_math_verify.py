"""Math equivalence through the worker pool: right answers, threads, and a worker that hangs."""

import threading
import time

from raspberry.verify import check
from raspberry.verify.math import MathPool, plain_number, verify_pair


def hangs_on_forever(gold: str, answer: str) -> bool:
    """Stands in for a math-verify call that never returns (in a worker process)."""
    if answer == "forever":
        time.sleep(3600)
    return verify_pair(gold, answer)


def test_equivalent_forms_and_near_misses():
    spec = {"kind": "math", "reference": r"\frac{1}{2}"}
    for answer in ("Final answer: 0.5", r"Final answer: $\frac{2}{4}$", r"\boxed{1/2}"):
        assert check(spec, answer).passed, answer
    for answer in ("Final answer: 0.25", "Final answer: -1/2", "Final answer: x"):
        assert not check(spec, answer).passed, answer


def test_plain_numbers_skip_the_parser():
    assert plain_number(r"\frac{3}{4}") == plain_number("0.75")
    assert plain_number("x+1") is None and plain_number("1e3") is None


def test_checks_from_many_threads_have_no_signal_errors():
    spec = {"kind": "math", "reference": "(x+1)^2"}
    results, errors = [], []

    def work():
        try:
            results.append(check(spec, "Final answer: x^2 + 2x + 1").passed)
        except Exception as exc:  # e.g. "signal only works in main thread"
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [True] * 6


def test_a_hung_worker_is_killed_and_the_rest_still_checked():
    pool = MathPool(workers=2, timeout_s=3, compare=hangs_on_forever)
    try:
        started = time.monotonic()
        pairs = [("2x", "x+x"), ("x^2", "forever"), ("x^2", "x*x"), ("x", "y"), ("x^3", "x*x*x")]
        results = pool.verify_many(pairs)
        assert results == [True, None, True, False, True]
        assert time.monotonic() - started < 30
        assert pool.verify_many([("x+1", "1+x")]) == [True]  # a fresh pool took over
    finally:
        pool.close()


def test_check_is_safe_from_a_plain_script_and_from_stdin(tmp_path):
    """Issue 18: with multiprocessing's workers, a script calling check() at its top level was
    imported again by every worker, which called check() again: minutes and leaked semaphores."""
    import subprocess
    import sys

    script = (
        "from raspberry.verify import check\n"
        "spec = {'kind': 'math', 'reference': '(x+1)^2'}\n"
        "print(check(spec, 'Final answer: x^2 + 2x + 1').passed)\n"
        "print(check({'kind': 'math', 'reference': 'x'}, 'Final answer: y').passed)\n"
    )
    path = tmp_path / "plain.py"
    path.write_text(script)
    for args, stdin in (([str(path)], None), (["-"], script)):
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, *args], input=stdin, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["True", "False"]
        assert time.monotonic() - started < 60


def test_a_check_waiting_for_the_only_worker_goes_on_when_that_worker_hangs():
    """The hung worker is replaced at once: a thread waiting for a free worker is not left
    waiting for one that will never come back."""
    pool = MathPool(workers=1, timeout_s=2, compare=hangs_on_forever)
    results = {}

    def ask(name: str, pair: tuple[str, str], delay: float) -> None:
        time.sleep(delay)
        results[name] = pool.verify_many([pair])

    threads = [
        threading.Thread(target=ask, args=("hung", ("x^2", "forever"), 0.0)),
        threading.Thread(target=ask, args=("waiting", ("2x", "x+x"), 0.3), daemon=True),
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {"hung": [None], "waiting": [True]}
    finally:
        pool.close()
