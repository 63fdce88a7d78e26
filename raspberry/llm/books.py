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
import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select

from raspberry.errors import BudgetExceeded
from raspberry.llm.state import (
    BUDGETS,
    IN_FLIGHT,
    LEDGER,
    RESPONSES,
    alive,
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


def _process(holder: str) -> str:
    return holder.rsplit("#", 1)[0]


def _exceeded(build_id: str, spent: float, max_usd: float, reserved: float, most: float) -> str:
    return (
        f"budget reached: build '{build_id}' has spent ${spent:.4f} of budget.max_usd "
        f"${max_usd:.4f} (${reserved:.4f} more in flight; the next request could cost "
        f"${most:.4f}); every answer received is cached: raise budget.max_usd and rerun the "
        "same build id to continue"
    )


def _in_flight_usd(conn: Connection, build_id: str, but: str | None = None) -> float:
    """The most a build's requests booked as sent may cost (but one, the key `but`)."""
    flying = (IN_FLIGHT.c.build_id == build_id) & IN_FLIGHT.c.sent_at.is_not(None)
    if but is not None:
        flying &= IN_FLIGHT.c.key != but
    return float(
        conn.execute(
            select(func.coalesce(func.sum(IN_FLIGHT.c.usd), 0.0)).where(flying)
        ).scalar_one()
    )


def _add_spent(conn: Connection, build_id: str, usd: float) -> None:
    conn.execute(
        BUDGETS.update().where(BUDGETS.c.build_id == build_id).values(spent=BUDGETS.c.spent + usd)
    )


def _unconfirmed(conn: Connection, build_id: str, key: str, usd: float) -> None:
    """A ledger line at the most a request or job may have cost, its bill not known."""
    conn.execute(LEDGER.insert().values(build_id=build_id, key=key, cost_usd=usd,
                                        created_at=time.time(), unconfirmed=1))  # fmt: skip
    _add_spent(conn, build_id, usd)


class Books:
    """A gateway's bookings in the state at `target`. build_id None: a gateway of no build, whose
    budget (if any) is its own, kept in memory; its requests still take leases."""

    def __init__(self, target: str, build_id: str | None, max_usd: float | None):
        self._engine = engine_for(target)
        self.build_id, self.max_usd = build_id, max_usd
        self._calls = itertools.count()
        self._lock = threading.Lock()
        self._booked: dict[str, float] = {}  # this gateway's calls in flight: holder -> most
        self._spent = 0.0  # what this gateway's answers cost
        self._answered = select(RESPONSES.c.key).where(RESPONSES.c.key == bindparam("key"))
        with self._engine.begin() as conn:
            if self._engine.dialect.name == "postgresql":  # the first process counts the ledger
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7216)")
            self._sweep(conn)
            if build_id is not None:
                exists = conn.execute(
                    select(BUDGETS.c.spent).where(BUDGETS.c.build_id == build_id)
                ).first()
                if exists is None:
                    spent = conn.execute(
                        select(func.coalesce(func.sum(LEDGER.c.cost_usd), 0.0)).where(
                            LEDGER.c.build_id == build_id
                        )
                    ).scalar_one()
                    conn.execute(BUDGETS.insert().values(build_id=build_id, spent=float(spent)))

    def holder(self) -> str:
        """A name for one call, unique among every process's."""
        return f"{this_process()}#{next(self._calls)}"

    def book(self, key: str, most: float, holder: str) -> None:
        """Write the request down as sent, at `most`, just before it is: raise HeldElsewhere when
        another living call holds its key or has just answered it, BudgetExceeded when it might
        not fit the budget (and then nothing is written)."""
        now, build = time.time(), self.build_id or ""
        with self._engine.begin() as conn:
            spent = None
            if self.build_id is not None and self.max_usd is not None:
                spent = conn.execute(  # held to the end: budget checks take turns
                    select(BUDGETS.c.spent)
                    .where(BUDGETS.c.build_id == self.build_id)
                    .with_for_update()
                ).scalar_one()
            row = {"key": key, "build_id": build, "holder": holder, "usd": most, "sent_at": now}
            won = conn.execute(
                insert(self._engine, IN_FLIGHT, **row)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(IN_FLIGHT.c.key)
            ).first()
            if won is not None and conn.execute(self._answered, {"key": key}).first():
                # Its holder answered it between the caller's look in the cache and now.
                raise HeldElsewhere(key)
            if won is None:
                held = conn.execute(
                    select(IN_FLIGHT).where(IN_FLIGHT.c.key == key).with_for_update()
                ).first()
                if held is not None and held.holder != holder:
                    if alive(conn, _process(held.holder)):
                        raise HeldElsewhere(key)
                    self._orphaned(conn, held)
                conn.execute(IN_FLIGHT.update().where(IN_FLIGHT.c.key == key).values(**row))
            if spent is not None:
                self._check(spent, _in_flight_usd(conn, build, but=key), most)
            with self._lock:
                if self.build_id is None and self.max_usd is not None:
                    self._check(self._spent, sum(self._booked.values()), most)
                self._booked[holder] = most

    def book_job(self, key: str, most: float) -> None:
        """A job the provider bills as it ends (a fine-tuning job): a ledger line at its most,
        unconfirmed, written within the budget before the job is created; once per key, however
        often a job is re-attached to."""
        assert self.build_id is not None, "a job is booked to a build"
        with self._engine.begin() as conn:
            spent = conn.execute(
                select(BUDGETS.c.spent).where(BUDGETS.c.build_id == self.build_id).with_for_update()
            ).scalar_one()
            mine = (LEDGER.c.build_id == self.build_id) & (LEDGER.c.key == key)
            if conn.execute(select(LEDGER.c.key).where(mine)).first():
                return
            if self.max_usd is not None:
                self._check(spent, _in_flight_usd(conn, self.build_id), most)
            _unconfirmed(conn, self.build_id, key, most)

    def settle_job(self, key: str, cost: float) -> None:
        """The job ended: its line holds what it cost (0 for a job that failed or was
        cancelled before training)."""
        mine = (LEDGER.c.build_id == self.build_id) & (LEDGER.c.key == key)
        with self._engine.begin() as conn:
            booked = conn.execute(
                select(LEDGER.c.cost_usd).where(mine, LEDGER.c.unconfirmed == 1)
            ).scalar()
            if booked is None:
                return
            conn.execute(LEDGER.update().where(mine).values(cost_usd=cost, unconfirmed=None))
            _add_spent(conn, self.build_id, cost - booked)

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
        with self._engine.begin() as conn:
            conn.execute(
                IN_FLIGHT.delete().where(IN_FLIGHT.c.key == key, IN_FLIGHT.c.holder == holder)
            )

    async def wait(self, key: str) -> None:
        """Until the key's holder has ended (its answer, if any, is in the cache) or died."""
        read = select(IN_FLIGHT.c.holder).where(IN_FLIGHT.c.key == key)
        while True:
            await asyncio.sleep(POLL_S)
            with self._engine.connect() as conn:
                holder = conn.execute(read).scalar()
                if holder is None or not alive(conn, _process(holder)):
                    return

    def _sweep(self, conn: Connection) -> None:
        """Move the entries of dead processes to the ledger."""
        for row in conn.execute(select(IN_FLIGHT).with_for_update()).all():
            if not alive(conn, _process(row.holder)):
                self._orphaned(conn, row)
                conn.execute(IN_FLIGHT.delete().where(IN_FLIGHT.c.key == row.key))

    @staticmethod
    def _orphaned(conn: Connection, row: Row[Any]) -> None:
        """A dead process's entry: if it was sent, its most is booked as paid, unconfirmed."""
        if row.sent_at is not None and row.build_id:
            _unconfirmed(conn, row.build_id, row.key, row.usd)


def paid(target: str | Path, build_id: str) -> Paid:
    """What a build paid over all its runs, interrupted ones included: its ledger, and its
    requests booked as sent whose answers are not recorded (in flight now, or their process
    died)."""
    if "://" not in str(target) and not Path(target).exists():
        return Paid(0.0, 0.0)
    engine = engine_for(str(target))
    with engine.connect() as conn:
        ledger, unconfirmed = conn.execute(
            select(
                func.coalesce(func.sum(LEDGER.c.cost_usd), 0.0),
                func.coalesce(func.sum(LEDGER.c.cost_usd).filter(LEDGER.c.unconfirmed == 1), 0.0),
            ).where(LEDGER.c.build_id == build_id)
        ).one()
        flying = _in_flight_usd(conn, build_id)
    return Paid(float(ledger + flying), float(unconfirmed + flying))
