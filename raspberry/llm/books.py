"""Book before send, and single flight across processes.

A request is written into `in_flight` (state.py) with the most it may cost, in the same
transaction that checks the build's budget, before it leaves the process; its answer replaces
that entry by a ledger line in one transaction (cache.py). A process killed with requests in
flight therefore leaves them booked: they count as paid, at their most, in the budget and in
what the build paid, marked unconfirmed (the provider may have answered and billed them; nobody
will know what it said). The next process that opens the state moves a dead process's entries to
the ledger as unconfirmed lines.

The same row is a lease on the request's key: a request a living call holds is awaited by every
other call, in this process or another, and answered from the cache, not sent again; a dead
holder's lease is taken over.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, exists, func, select, text

from raspberry.errors import BudgetExceeded
from raspberry.llm.driver import DriverTx, Prepared, driver
from raspberry.llm.state import (
    ALIVE_S,
    BUDGETS,
    IN_FLIGHT,
    LEDGER,
    PEERS,
    RESPONSES,
    engine_for,
    insert,
    this_process,
)

POLL_S = 0.2  # how often a call awaiting another's answer looks again


class HeldElsewhere(Exception):
    """The request is in flight in another living call: await its answer (Books.wait)."""


@dataclass(frozen=True)
class Paid:
    """What a build paid: every ledger line and every request booked as sent. unconfirmed_usd
    of it is an upper bound: requests whose process died before their answer came."""

    usd: float
    unconfirmed_usd: float


@functools.cache
def _heard(engine: Engine) -> Prepared:
    peer = (PEERS.c.process == bindparam("p_process")) & (PEERS.c.limit_key == "")
    return Prepared(engine, select(PEERS.c.seen_at).where(peer))


def alive(tx: DriverTx, process: str) -> bool:
    """Whether a process ("host:pid") lives: asked of the kernel on this machine (a killed
    process is known dead at once), else of its heartbeat."""
    host, _, pid = process.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's: it exists
            return True
        try:  # a killed child its parent has not reaped yet is a zombie: dead all the same
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    seen = tx.execute(_heard(tx.engine), {"p_process": process})
    return bool(seen) and seen[0].seen_at > time.time() - ALIVE_S


def _process(holder: str) -> str:
    return holder.rsplit("#", 1)[0]


def _exceeded(build_id: str, spent: float, max_usd: float, reserved: float, most: float) -> str:
    return (
        f"budget reached: build '{build_id}' has spent ${spent:.4f} of budget.max_usd "
        f"${max_usd:.4f} (${reserved:.4f} more in flight; the next request could cost "
        f"${most:.4f}); every answer received is cached: raise budget.max_usd and rerun the "
        "same build id to continue"
    )


class Statements:
    """The books' statements (the ledger's and the flights' too, which cache.py writes as an
    answer comes), compiled once per engine for its driver (driver.py)."""

    def __init__(self, engine: Engine):
        p = functools.partial(Prepared, engine)
        # Parameters are named p_<column>: SQLAlchemy keeps plain column names for itself.
        key, build = bindparam("p_key"), bindparam("p_build_id")
        self.lock = p(text("SELECT pg_advisory_xact_lock(7216)"))
        self.spent = p(select(BUDGETS.c.spent).where(BUDGETS.c.build_id == build))
        self.spent_held = p(  # held to the end: budget checks take turns
            select(BUDGETS.c.spent).where(BUDGETS.c.build_id == build).with_for_update()
        )
        self.budget = p(BUDGETS.insert().values(build_id=build, spent=bindparam("p_spent")))
        self.ledger_sum = p(
            select(func.coalesce(func.sum(LEDGER.c.cost_usd), 0.0)).where(
                LEDGER.c.build_id == build
            )
        )
        self.add = p(
            BUDGETS.update()
            .where(BUDGETS.c.build_id == build)
            .values(spent=BUDGETS.c.spent + bindparam("p_usd"))
        )
        flying = (IN_FLIGHT.c.build_id == build) & IN_FLIGHT.c.sent_at.is_not(None)
        self.flying = p(select(func.coalesce(func.sum(IN_FLIGHT.c.usd), 0.0)).where(flying))
        # The sum but one request's own (it may be booked again, after a 429).
        self.flying_but = p(
            select(func.coalesce(func.sum(IN_FLIGHT.c.usd), 0.0)).where(
                flying, IN_FLIGHT.c.key != key
            )
        )
        names = ("key", "build_id", "holder", "usd", "sent_at")
        row = {c: bindparam(f"p_{c}", type_=IN_FLIGHT.c[c].type) for c in names}
        # The key taken unless it is held, or answered since the caller looked in the cache.
        unanswered = select(*row.values()).where(~exists().where(RESPONSES.c.key == key))
        self.take = p(
            insert(engine, IN_FLIGHT)
            .from_select(list(names), unanswered)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(IN_FLIGHT.c.key)
        )
        self.retake = p(IN_FLIGHT.update().where(IN_FLIGHT.c.key == key).values(**row))
        self.held = p(select(IN_FLIGHT).where(IN_FLIGHT.c.key == key).with_for_update())
        self.holder = p(select(IN_FLIGHT.c.holder).where(IN_FLIGHT.c.key == key))
        self.every = p(select(IN_FLIGHT).with_for_update())
        self.drop = p(IN_FLIGHT.delete().where(IN_FLIGHT.c.key == key))
        # A call's flight ends: its answer is recorded (cache.py), or it ends without one.
        self.land = p(
            IN_FLIGHT.delete().where(
                IN_FLIGHT.c.key == key, IN_FLIGHT.c.holder == bindparam("p_holder")
            )
        )
        self.pay = p(
            LEDGER.insert().values(
                build_id=build,
                key=key,
                cost_usd=bindparam("p_usd"),
                created_at=bindparam("p_created_at"),
                unconfirmed=bindparam("p_unconfirmed"),
            )
        )
        mine = (LEDGER.c.build_id == build) & (LEDGER.c.key == key)
        self.line = p(select(LEDGER.c.key).where(mine))
        unconfirmed = mine & (LEDGER.c.unconfirmed == 1)
        self.booked = p(select(LEDGER.c.cost_usd, LEDGER.c.created_at).where(unconfirmed))
        self.settle = p(
            LEDGER.update()
            .where(unconfirmed, LEDGER.c.created_at == bindparam("p_created_at"))
            .values(cost_usd=bindparam("p_usd"), unconfirmed=None)
        )
        self.paid = p(
            select(
                func.coalesce(func.sum(LEDGER.c.cost_usd), 0.0),
                func.coalesce(func.sum(LEDGER.c.cost_usd).filter(LEDGER.c.unconfirmed == 1), 0.0),
            ).where(LEDGER.c.build_id == build)
        )


@functools.cache
def statements(engine: Engine) -> Statements:
    return Statements(engine)


def pay(tx: DriverTx, build_id: str, key: str, usd: float, unconfirmed: bool = False) -> None:
    """A ledger line and the build's spent figure; unconfirmed: at the most a request or job
    may have cost, its bill not known."""
    sql = statements(tx.engine)
    line = {"p_build_id": build_id, "p_key": key, "p_usd": usd, "p_created_at": time.time(),
            "p_unconfirmed": 1 if unconfirmed else None}  # fmt: skip
    tx.execute(sql.pay, line)
    tx.execute(sql.add, line)


def settle(tx: DriverTx, build_id: str, key: str, cost: float) -> bool:
    """The line booked, unconfirmed, at the most a request or job might cost holds what it did
    cost: the same response or job, paid once (False: no such line)."""
    sql, line = statements(tx.engine), {"p_build_id": build_id, "p_key": key}
    booked = tx.execute(sql.booked, line)
    if not booked:
        return False
    most, created_at = booked[0].cost_usd, booked[0].created_at
    tx.execute(sql.settle, {**line, "p_created_at": created_at, "p_usd": cost})
    tx.execute(sql.add, {**line, "p_usd": cost - most})
    return True


def _scalar(rows: list[Any]) -> Any:
    return rows[0][0] if rows else None


class Books:
    """A gateway's bookings in the state at `target`. build_id None: a gateway of no build, whose
    budget (if any) is its own, kept in memory; its requests still take leases."""

    def __init__(self, target: str, build_id: str | None, max_usd: float | None):
        self._engine = engine_for(target)
        self._sql = statements(self._engine)
        self.build_id, self.max_usd = build_id, max_usd
        self._calls = itertools.count()
        self._lock = threading.Lock()
        self._booked: dict[str, float] = {}  # this gateway's calls in flight: holder -> most
        self._spent = 0.0  # what this gateway's answers cost
        with driver(self._engine) as tx:
            if self._engine.dialect.name == "postgresql":  # the first process counts the ledger
                tx.execute(self._sql.lock)
            self._sweep(tx)
            build = {"p_build_id": build_id}
            if build_id is not None and not tx.execute(self._sql.spent, build):
                spent = _scalar(tx.execute(self._sql.ledger_sum, build))
                tx.execute(self._sql.budget, {**build, "p_spent": float(spent)})

    def holder(self) -> str:
        """A name for one call, unique among every process's."""
        return f"{this_process()}#{next(self._calls)}"

    def book(self, key: str, most: float, holder: str) -> None:
        """Write the request down as sent, at `most`, just before it is: raise HeldElsewhere when
        another living call holds its key or has just answered it, BudgetExceeded when it might
        not fit the budget (and then nothing is written)."""
        sql, build = self._sql, self.build_id or ""
        row = {"p_key": key, "p_build_id": build, "p_holder": holder, "p_usd": most,
               "p_sent_at": time.time()}  # fmt: skip
        if self.max_usd is None:  # no budget to hold: the one statement is the transaction
            with driver(self._engine, write=False) as tx:
                if tx.execute(sql.take, row):
                    with self._lock:
                        self._booked[holder] = most
                    return
        with driver(self._engine) as tx:  # a budget, or the key held (or answered)
            spent = None
            if self.build_id is not None and self.max_usd is not None:
                spent = _scalar(tx.execute(sql.spent_held, row))
            if not tx.execute(sql.take, row):
                held = tx.execute(sql.held, row)
                if not held:
                    # Answered between the caller's look in the cache and now: it is there.
                    raise HeldElsewhere(key)
                if held[0].holder != holder:
                    if alive(tx, _process(held[0].holder)):
                        raise HeldElsewhere(key)
                    self._orphaned(tx, held[0])
                tx.execute(sql.retake, row)
            if spent is not None:
                self._check(spent, _scalar(tx.execute(sql.flying_but, row)), most)
            with self._lock:
                if self.build_id is None and self.max_usd is not None:
                    self._check(self._spent, sum(self._booked.values()), most)
                self._booked[holder] = most

    def book_job(self, key: str, most: float) -> None:
        """A job the provider bills as it ends (a fine-tuning job): a ledger line at its most,
        unconfirmed, written within the budget before the job is created; once per key, however
        often a job is re-attached to."""
        assert self.build_id is not None, "a job is booked to a build"
        line = {"p_build_id": self.build_id, "p_key": key}
        with driver(self._engine) as tx:
            spent = _scalar(tx.execute(self._sql.spent_held, line))
            if tx.execute(self._sql.line, line):
                return
            if self.max_usd is not None:
                self._check(spent, _scalar(tx.execute(self._sql.flying, line)), most)
            pay(tx, self.build_id, key, most, unconfirmed=True)

    def settle_job(self, key: str, cost: float) -> None:
        """The job ended: its line holds what it cost (0 for a job that failed or was
        cancelled before training)."""
        assert self.build_id is not None, "a job is booked to a build"
        with driver(self._engine) as tx:
            settle(tx, self.build_id, key, cost)

    def _check(self, spent: float, reserved: float, most: float) -> None:
        assert self.max_usd is not None
        if spent + reserved + most > self.max_usd:
            name = self.build_id or "(no build)"
            raise BudgetExceeded(_exceeded(name, spent, self.max_usd, reserved, most))

    def answered(self, holder: str, cost: float) -> None:
        """The call's answer is recorded (cache.put took its entry out of flight)."""
        with self._lock:
            self._booked.pop(holder, None)
            self._spent += cost

    def release(self, key: str, holder: str) -> None:
        """The call ends without an answer to record: its entry goes (it was not paid)."""
        with self._lock:
            self._booked.pop(holder, None)
        with driver(self._engine) as tx:
            tx.execute(self._sql.land, {"p_key": key, "p_holder": holder})

    async def wait(self, key: str) -> None:
        """Until the key's holder has ended (its answer, if any, is in the cache) or died."""
        while True:
            await asyncio.sleep(POLL_S)
            with driver(self._engine, write=False) as tx:
                holder = _scalar(tx.execute(self._sql.holder, {"p_key": key}))
                if holder is None or not alive(tx, _process(holder)):
                    return

    def _sweep(self, tx: DriverTx) -> None:
        """Move the entries of dead processes to the ledger."""
        for row in tx.execute(self._sql.every):
            if not alive(tx, _process(row.holder)):
                self._orphaned(tx, row)
                tx.execute(self._sql.drop, {"p_key": row.key})

    @staticmethod
    def _orphaned(tx: DriverTx, row: Any) -> None:
        """A dead process's entry: if it was sent, its most is booked as paid, unconfirmed."""
        if row.sent_at is not None and row.build_id:
            pay(tx, row.build_id, row.key, row.usd, unconfirmed=True)


def paid(target: str | Path, build_id: str) -> Paid:
    """What a build paid over all its runs, interrupted ones included: its ledger, and its
    requests booked as sent whose answers are not recorded (in flight now, or their process
    died)."""
    if "://" not in str(target) and not Path(target).exists():
        return Paid(0.0, 0.0)
    engine = engine_for(str(target))
    sql, build = statements(engine), {"p_build_id": build_id}
    with driver(engine, write=False) as tx:
        ledger, unconfirmed = tx.execute(sql.paid, build)[0]
        flying = _scalar(tx.execute(sql.flying, build))
    return Paid(float(ledger + flying), float(unconfirmed + flying))
