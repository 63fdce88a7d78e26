"""What a request cost, and the build's budget: never send a request that could overspend it.

Before a request is sent its most expensive outcome (estimated input, max_tokens of output) is
reserved against the budget, and settled at its real cost when the answer comes: requests in
flight can therefore never take a build past max_usd (up to the error of the input estimate).

A build's spending is recorded in the request cache's ledger with each response, so a build id
rerun after a budget stop counts what its earlier runs paid. Within a process, the shard tasks of
one build share one Budget (they run in threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from raspberry.errors import BudgetExceeded
from raspberry.llm.config import PriceConfig
from raspberry.llm.types import Completion


def most_cost(price: PriceConfig | None, tokens_in: int, max_tokens: int, batch: bool) -> float:
    """The most a request may cost: all its input uncached and max_tokens of output."""
    if price is None:
        return 0.0
    dollars = (tokens_in * price.input_per_mtok + max_tokens * price.output_per_mtok) / 1e6
    return dollars * (1 - price.batch_discount) if batch else dollars


def request_cost(price: PriceConfig | None, completion: Completion) -> float:
    """US dollars for one answered request; 0 for a model without a price."""
    if price is None:
        return 0.0
    cached_price = (
        price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    )
    fresh = completion.tokens_in - completion.tokens_cached
    dollars = (
        fresh * price.input_per_mtok
        + completion.tokens_cached * cached_price
        + completion.tokens_out * price.output_per_mtok
    ) / 1e6
    return dollars * (1 - price.batch_discount) if completion.batch else dollars


class Budget:
    """Dollars spent and reserved by one build id against its limit; thread-safe."""

    def __init__(self, build_id: str, max_usd: float | None, spent: float):
        self.build_id, self.max_usd, self.spent = build_id, max_usd, spent
        self.reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, most: float) -> None:
        """Book a request's most expensive outcome, or raise BudgetExceeded if it might not fit."""
        with self._lock:
            if self.max_usd is not None and self.spent + self.reserved + most > self.max_usd:
                raise BudgetExceeded(
                    f"budget reached: build '{self.build_id}' has spent ${self.spent:.4f} of "
                    f"budget.max_usd ${self.max_usd:.4f} (${self.reserved:.4f} more in flight; "
                    f"the next request could cost ${most:.4f}); every answer received is "
                    "cached: raise budget.max_usd and rerun the same build id to continue"
                )
            self.reserved += most

    def settle(self, most: float, actual: float) -> None:
        """Replace a reservation by what the request really cost (0 if it failed)."""
        with self._lock:
            self.reserved -= most
            self.spent += actual


_BUDGETS: dict[tuple[str, str], Budget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(
    cache_path: str, build_id: str, max_usd: float | None, spent: Callable[[], float]
) -> Budget:
    """The process's Budget for a build id, created once from what the cache's ledger says the
    build spent (`spent` is asked only then)."""
    with _BUDGETS_LOCK:
        key = (cache_path, build_id)
        if key not in _BUDGETS:
            _BUDGETS[key] = Budget(build_id, max_usd, spent())
        budget = _BUDGETS[key]
        budget.max_usd = max_usd  # a rerun may have raised it
        return budget


def money(usd: float) -> str:
    """Dollars to the cent, or to 4 significant digits below a cent."""
    if usd == 0 or abs(usd) >= 0.01:
        return f"${usd:,.2f}"
    return f"${usd:.4g}"
