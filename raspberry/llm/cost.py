"""What a request cost, and the build's budget: never send a request that could overspend it.

Before a request is sent its most expensive outcome (estimated input, max_tokens of output) is
reserved against the budget, and settled at its real cost when the answer comes: requests in
flight can therefore never take a build past max_usd (up to the error of the input estimate).

A build's spending is recorded in the request cache's ledger with each response, so a build id
rerun after a budget stop counts what its earlier runs paid. Reservations and the spent figure
live in the gateway's state database (state.py), so every process of a build, on any machine,
reserves against one budget (SharedBudget).
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from raspberry.errors import BudgetExceeded
from raspberry.llm.config import PriceConfig
from raspberry.llm.state import (
    ALIVE_S,
    BUDGETS,
    LEDGER,
    PEERS,
    RESERVATIONS,
    engine_for,
    this_process,
)
from raspberry.llm.types import Completion


def most_cost(price: PriceConfig | None, tokens_in: int, max_tokens: int, batch: bool) -> float:
    """The most a request may cost: all its input written to the prompt cache (or uncached, if
    that costs more) and max_tokens of output."""
    if price is None:
        return 0.0
    per_input = max(price.input_per_mtok, _or(price.cache_write_per_mtok, 0.0))
    dollars = (tokens_in * per_input + max_tokens * price.output_per_mtok) / 1e6
    return dollars * (1 - price.batch_discount) if batch else dollars


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def request_cost(price: PriceConfig | None, completion: Completion) -> float:
    """US dollars for one answered request; 0 for a model without a price."""
    if price is None:
        return 0.0
    c = completion
    read_price = _or(price.cache_read_per_mtok, price.input_per_mtok)
    write_price = _or(price.cache_write_per_mtok, price.input_per_mtok)
    fresh = c.tokens_in - c.tokens_cache_read - c.tokens_cache_write
    dollars = (
        fresh * price.input_per_mtok
        + c.tokens_cache_read * read_price
        + c.tokens_cache_write * write_price
        + c.tokens_out * price.output_per_mtok
    ) / 1e6
    return dollars * (1 - price.batch_discount) if completion.batch else dollars


def _exceeded(build_id: str, spent: float, max_usd: float, reserved: float, most: float) -> str:
    return (
        f"budget reached: build '{build_id}' has spent ${spent:.4f} of budget.max_usd "
        f"${max_usd:.4f} (${reserved:.4f} more in flight; the next request could cost "
        f"${most:.4f}); every answer received is cached: raise budget.max_usd and rerun the "
        "same build id to continue"
    )


class Budget:
    """Dollars spent and reserved against a limit by one gateway with no build; thread-safe."""

    def __init__(self, build_id: str, max_usd: float | None, spent: float):
        self.build_id, self.max_usd, self.spent = build_id, max_usd, spent
        self.reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, most: float) -> object:
        """Book a request's most expensive outcome, or raise BudgetExceeded if it might not fit;
        the ticket that settles it."""
        with self._lock:
            if self.max_usd is not None and self.spent + self.reserved + most > self.max_usd:
                raise BudgetExceeded(
                    _exceeded(self.build_id, self.spent, self.max_usd, self.reserved, most)
                )
            self.reserved += most
        return most

    def settle(self, ticket: object, actual: float) -> None:
        """Replace a reservation by what the request really cost (0 if it failed)."""
        with self._lock:
            self.reserved -= ticket  # type: ignore[operator]
            self.spent += actual


class SharedBudget:
    """A build's budget in the gateway's state database, shared by every process of the build on
    every machine: a reservation is a row, checked and written in one transaction that holds the
    build's budget row, so two workers can never both reserve the last dollar. What was spent
    is the budget row's figure, which each ledger line adds to (cache.py). A reservation counts
    while its process is alive (state.py's heartbeat)."""

    def __init__(self, target: str, build_id: str, max_usd: float | None):
        self.build_id, self.max_usd = build_id, max_usd
        self._engine = engine_for(target)
        with self._engine.begin() as conn:
            if self._engine.dialect.name == "postgresql":  # the first process counts the ledger
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7216)")
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

    def reserve(self, most: float) -> object:
        if self.max_usd is None:
            return None
        now = time.time()
        with self._engine.begin() as conn:
            spent = conn.execute(
                select(BUDGETS.c.spent).where(BUDGETS.c.build_id == self.build_id).with_for_update()
            ).scalar_one()
            alive = select(PEERS.c.process).where(
                PEERS.c.limit_key == "", PEERS.c.seen_at > now - ALIVE_S
            )
            reserved = conn.execute(
                select(func.coalesce(func.sum(RESERVATIONS.c.usd), 0.0)).where(
                    RESERVATIONS.c.build_id == self.build_id, RESERVATIONS.c.process.in_(alive)
                )
            ).scalar_one()
            if spent + reserved + most > self.max_usd:
                raise BudgetExceeded(_exceeded(self.build_id, spent, self.max_usd, reserved, most))
            return conn.execute(
                RESERVATIONS.insert().values(
                    build_id=self.build_id, usd=most, process=this_process()
                )
            ).inserted_primary_key[0]

    def settle(self, ticket: object, actual: float) -> None:
        """Drop the reservation: the ledger line (written before) holds what it cost."""
        if ticket is None:
            return
        with self._engine.begin() as conn:
            conn.execute(RESERVATIONS.delete().where(RESERVATIONS.c.id == ticket))


def money(usd: float) -> str:
    """Dollars to the cent, or to 4 significant digits below a cent."""
    if usd == 0 or abs(usd) >= 0.01:
        return f"${usd:,.2f}"
    return f"${usd:.4g}"
