"""The gateway state shared by processes (llm/state.py), on SQLite and on a real PostgreSQL
server: the request cache and ledger, budgets no two processes can overspend, and rate-limit
buckets that several processes fill together."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

import pytest

from raspberry.errors import BudgetExceeded, ConfigError
from raspberry.llm.cache import RequestCache, paid
from raspberry.llm.cost import SharedBudget
from raspberry.llm.shared_limits import limits_for
from raspberry.llm.state import RESERVATIONS, engine_for
from raspberry.llm.types import Completion

KEY = ("sim", "sim-teacher")


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite")
    url = request.getfixturevalue("postgres_url")
    # One database per test: a schema of its own would do, but a table prefix would not.
    name = f"t{time.monotonic_ns()}"
    with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def _together(n: int, target: Callable[..., None], *args: object, start_at: float = 0.0) -> list:
    """What n new processes running target(*args, start_at, queue) put on the queue; they all
    begin at start_at (default: in 3 s, once each has imported what it needs)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = start_at or time.time() + 3
    procs = [ctx.Process(target=target, args=(*args, start_at, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    return results


def _answer(cost: float) -> Completion:
    return Completion(text="ok", stop_reason="stop", tokens_in=3, tokens_out=2, model="m",
                      cost_usd=cost)  # fmt: skip


def test_cache_and_ledger_answer_every_process(state):
    cache = RequestCache(state)
    cache.put("k1", _answer(0.25), "b")
    cache.put("k1", _answer(9.0), "b")  # a second answer to one request: paid, not kept
    assert cache.get("k1").cost_usd == 0.25 and cache.get("nope") is None
    assert paid(state, "b") == pytest.approx(9.25)
    stats = cache.stats()
    assert stats["models"]["m"]["responses"] == 1
    assert stats["builds"]["b"] == {"responses_paid": 2, "cost_usd": 9.25}


def _reserve(state: str, most: float, start_at: float, out: multiprocessing.Queue) -> None:
    budget = SharedBudget(state, "b", max_usd=1.0)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        budget.reserve(most)
        out.put("reserved")
    except BudgetExceeded:
        out.put("refused")
    time.sleep(1.0)  # alive, holding the reservation, while the others try


def test_two_processes_never_both_reserve_the_last_dollar(state):
    RequestCache(state).put("spent", _answer(0.3), "b")
    SharedBudget(state, "b", max_usd=1.0)  # the budget row, from the ledger: $0.30 spent
    said = sorted(_together(4, _reserve, state, 0.3))
    assert said == ["refused", "refused", "reserved", "reserved"]  # 0.3 + 2 x 0.3 <= 1.0


def test_a_dead_process_s_reservation_does_not_hold_the_budget(state):
    budget = SharedBudget(state, "b", max_usd=1.0)
    with engine_for(state).begin() as conn:  # a process that never says it is alive
        conn.execute(RESERVATIONS.insert().values(build_id="b", usd=0.9, process="gone:1"))
    ticket = budget.reserve(0.5)
    budget.settle(ticket, 0.0)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.0000 of budget.max_usd \$1.0000"):
        budget.reserve(0.5), budget.reserve(0.6)


def _book(state: str, n: int, start_at: float, out: multiprocessing.Queue) -> None:
    limits = limits_for(state)
    limits.seed(KEY, {"requests": 6000})
    time.sleep(max(0.0, start_at - time.time()))
    # When each booked request may leave, on the wall clock the shared buckets run on.
    out.put(([time.time() + limits.reserve(KEY, 10) for _ in range(n)], limits.sharing(KEY)))


def test_three_processes_fill_one_limit_together(state):
    """6,000 a minute is 99 a second with the headroom: 3 processes booking 50 requests each
    at once get slots spread over 1.5 s, as one process booking 150 would, not 0.5 s each."""
    start_at = time.time() + 3
    results = _together(3, _book, state, 50, start_at=start_at)
    leave = sorted(t for booked, _ in results for t in booked)
    assert len(leave) == 150
    assert 1.45 < leave[-1] - start_at < 2.0, leave[-1] - start_at
    assert max(sharing for _, sharing in results) == 3


def test_a_state_url_with_a_password_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="put it in PGPASSWORD"):
        RequestCache("postgresql://raspberry:secret@127.0.0.1:1/raspberry")
