"""What a request cost, and the most it may cost.

Before a request is sent its most expensive outcome (estimated input, max_tokens of output) is
booked against the budget (books.py), and replaced by its real cost when the answer comes:
requests in flight can therefore never take a build past max_usd (up to the error of the input
estimate). A build's spending is recorded in the request cache's ledger with each response, so
a build id rerun after a budget stop counts what its earlier runs paid.
"""

from __future__ import annotations

from raspberry.llm.config import PriceConfig
from raspberry.llm.types import Completion

OPENAI_CACHE_STEP = 128  # OpenAI caches prompts in steps of this many tokens past the minimum


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


def money(usd: float) -> str:
    """Dollars to the cent, or to 4 significant digits below a cent."""
    if usd == 0 or abs(usd) >= 0.01:
        return f"${usd:,.2f}"
    return f"${usd:.4g}"
