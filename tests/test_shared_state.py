"""The gateway state shared by processes (llm/state.py), on SQLite and on a real PostgreSQL
server: the request cache and ledger, requests booked before they are sent (books.py) under
budgets no two processes can overspend and awaited rather than sent twice, and rate-limit
buckets that several processes fill together."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from sqlalchemy import select

from raspberry.errors import BudgetExceeded, ConfigError
from raspberry.llm import spool
from raspberry.llm.books import Books, HeldElsewhere, Paid, paid
from raspberry.llm.cache import RequestCache
from raspberry.llm.gateway import Gateway
from raspberry.llm.shared_limits import SharedLimits, limits_for
from raspberry.llm.state import IN_FLIGHT, LEDGER, engine_for
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
    assert paid(state, "b").usd == pytest.approx(9.25)
    stats = cache.stats()
    assert stats["models"]["m"]["responses"] == 1
    assert stats["builds"]["b"] == {"responses_paid": 2, "cost_usd": 9.25, "unconfirmed_usd": 0.0}


def _reserve(state: str, most: float, start_at: float, out: multiprocessing.Queue) -> None:
    books = Books(state, "b", max_usd=1.0)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        books.book(f"key-{os.getpid()}", most, books.holder())
        out.put("reserved")
    except BudgetExceeded:
        out.put("refused")
    time.sleep(1.0)  # alive, holding the booking, while the others try


def test_two_processes_never_both_book_the_last_dollar(state):
    RequestCache(state).put("spent", _answer(0.3), "b")
    Books(state, "b", max_usd=1.0)  # the budget row, from the ledger: $0.30 spent
    said = sorted(_together(4, _reserve, state, 0.3))
    assert said == ["refused", "refused", "reserved", "reserved"]  # 0.3 + 2 x 0.3 <= 1.0


def _dead_process_booked(state: str, key: str, usd: float, sent: bool = True) -> None:
    """A booking left by a process of this machine that no longer runs."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    with engine_for(state).begin() as conn:
        conn.execute(IN_FLIGHT.insert().values(
            key=key, build_id="b", holder=f"{socket.gethostname()}:{dead.pid}#0", usd=usd,
            sent_at=time.time() if sent else None))  # fmt: skip


def test_a_request_a_dead_process_sent_counts_as_paid_unconfirmed(state):
    books = Books(state, "b", max_usd=1.0)
    books.book("live", 0.25, holder := books.holder())
    assert paid(state, "b") == Paid(0.25, 0.25)  # in flight: paid, at its most, until answered
    RequestCache(state).put("live", _answer(0.1), "b", holder=holder)
    assert paid(state, "b") == Paid(0.1, 0.0)
    _dead_process_booked(state, "sent", 0.6)
    _dead_process_booked(state, "never-sent", 5.0, sent=False)
    assert paid(state, "b") == Paid(0.7, 0.6)
    Books(state, "b", max_usd=1.0)  # the next process books the dead one's entries
    with engine_for(state).connect() as conn:
        lines = conn.execute(
            select(LEDGER.c.key, LEDGER.c.cost_usd, LEDGER.c.unconfirmed).order_by(LEDGER.c.key)
        ).all()
        assert conn.execute(select(IN_FLIGHT)).all() == []
    assert [tuple(r) for r in lines] == [("live", 0.1, None), ("sent", 0.6, 1)]
    assert paid(state, "b") == Paid(0.7, 0.6)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.7000 of budget.max_usd \$1.0000"):
        books.book("next", 0.4, books.holder())


def test_an_answer_replayed_from_the_spool_is_booked_once(state, tmp_path, monkeypatch):
    """The spool keeps answers whose write did not come back; a frozen server may still have
    taken that write (its COMMIT was on the wire), and the replay must not book it again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    books, cache = Books(state, "b", max_usd=None), RequestCache(state)
    books.book("taken", 0.5, taken := books.holder())
    cache.put("taken", _answer(0.1), "b", holder=taken)  # the server took it after all
    spool.keep(state, ("taken", _answer(0.1), "b", True, taken, True))
    books.book("lost", 0.5, lost := books.holder())  # this write never reached it
    spool.keep(state, ("lost", _answer(0.2), "b", True, lost, True))
    RequestCache(state)  # the next process writes what the spool kept
    with engine_for(state).connect() as conn:
        lines = conn.execute(select(LEDGER.c.key, LEDGER.c.cost_usd).order_by(LEDGER.c.key))
        assert [tuple(r) for r in lines] == [("lost", 0.2), ("taken", 0.1)]
        assert conn.execute(select(IN_FLIGHT)).all() == []
    assert cache.get("lost").cost_usd == 0.2 and paid(state, "b") == Paid(pytest.approx(0.3), 0.0)


def test_a_key_held_by_a_living_call_is_awaited_and_a_dead_one_s_taken_over(state):
    books = Books(state, "b", max_usd=None)
    books.book("k", 0.1, books.holder())
    with pytest.raises(HeldElsewhere):
        books.book("k", 0.1, books.holder())  # another call of this (living) process
    _dead_process_booked(state, "d", 0.2)
    books.book("d", 0.3, mine := books.holder())  # taken over: the dead one's most is booked
    with engine_for(state).connect() as conn:
        assert (
            conn.execute(select(IN_FLIGHT.c.holder).where(IN_FLIGHT.c.key == "d")).scalar() == mine
        )
    assert paid(state, "b") == Paid(0.2 + 0.1 + 0.3, 0.2 + 0.1 + 0.3)


def _ask(state: str, url: str, start_at: float, out: multiprocessing.Queue) -> None:
    from raspberry.stages.config import load_config

    config = load_config(Path(state).parent / "build.yaml") if "://" not in state else None
    assert config is not None
    time.sleep(max(0.0, start_at - time.time()))

    async def ask() -> tuple[str, int]:
        async with Gateway(config.llm, url, build_id=f"b{os.getpid()}") as gw:
            answer = await gw.chat("teacher", [{"role": "user", "content": "What is 2 + 2?"}],
                                   prompt_ref="t")  # fmt: skip
            return answer.text, gw.stats.requests_sent

    out.put(asyncio.run(ask()))


def test_three_processes_asking_the_same_request_pay_for_it_once(tmp_path, make_config):
    make_config()  # writes build.yaml beside the cache
    with running_sim(SimConfig(latency_ms=1500, seed=3)) as url:
        said = _together(3, _ask, str(tmp_path / "cache.sqlite"), url)
        served = httpx.get(f"{url}/_sim/stats").json()["requests"]
    assert served == 1, said
    assert len({text for text, _ in said}) == 1 and sorted(n for _, n in said) == [0, 0, 1]


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


def _book_alone(state: str, start_at: float, stay_s: float, out: multiprocessing.Queue) -> None:
    limits = SharedLimits(state)
    time.sleep(max(0.0, start_at - time.time()))
    limits.seed(KEY, {"requests": 6000})
    out.put([time.time() + limits.reserve(KEY, 10) for _ in range(50)])
    time.sleep(stay_s)  # quiet, alive: what it booked must still reach the others


def test_what_a_process_booked_alone_reaches_the_next_one(state):
    """A process alone on a limit books in memory and writes every SYNC_S, even once it goes
    quiet: a process that comes next books after the first one's slots, not over them."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3
    first = ctx.Process(target=_book_alone, args=(state, start_at, 2.0, out))
    second = ctx.Process(target=_book_alone, args=(state, start_at + 0.3, 0.0, out))
    first.start(), second.start()
    one, two = out.get(timeout=60), out.get(timeout=60)
    first.join(), second.join()
    assert max(one) - start_at < 0.6  # 50 at 99 a second, from the start
    assert min(two) >= max(one) - 0.02, (min(two) - start_at, max(one) - start_at)


def test_a_state_url_with_a_password_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="put it in PGPASSWORD"):
        RequestCache("postgresql://raspberry:secret@127.0.0.1:1/raspberry")
