"""Prompt caching: the simulator reports cache reads and writes as the real APIs do, the gateway
marks Anthropic prompts for caching, and both are counted and priced."""

import asyncio

import httpx
import pytest
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from raspberry_sim.prompt_cache import PromptCache

from raspberry.llm import Gateway
from raspberry.llm.config import PriceConfig
from raspberry.llm.cost import request_cost
from raspberry.llm.types import Completion

LONG = "Think it through and take all the room you need. " * 120  # ~1,500 tokens


def test_anthropic_reads_the_longest_cached_prefix_and_writes_the_rest():
    now = [0.0]
    cache = PromptCache(min_tokens=100, clock=lambda: now[0])
    system = (LONG, True)
    turn1 = [system, ("user:" + "q" * 800, False)]
    assert cache.anthropic("m", turn1) == (0, len(LONG) // 4)  # the system prompt is written
    assert cache.anthropic("m", turn1) == (len(LONG) // 4, 0)  # and read by the next request
    turn2 = [system, ("user:" + "q" * 800, False), ("assistant:" + "a" * 800, False),
             ("user:nudge", True)]  # fmt: skip
    read, written = cache.anthropic("m", turn2)
    total = sum(len(t) for t, _ in turn2) // 4
    assert read == len(LONG) // 4 and read + written == total
    turn3 = [*turn2[:3], ("user:nudge", False), ("assistant:" + "b" * 800, False),
             ("user:again", True)]  # fmt: skip
    read3, _ = cache.anthropic("m", turn3)
    assert read3 == total  # turn 3 reads all of turn 2's prompt
    assert cache.anthropic("other-model", turn1) == (0, len(LONG) // 4)  # caches are per model
    now[0] += 301  # five minutes unused: gone
    assert cache.anthropic("m", turn1) == (0, len(LONG) // 4)


def test_anthropic_caches_nothing_below_the_minimum_or_unmarked():
    cache = PromptCache(min_tokens=1024)
    short = [("x" * 400, True), ("user:q", True)]
    assert cache.anthropic("m", short) == (0, 0)
    assert cache.anthropic("m", short) == (0, 0)
    assert cache.anthropic("m", [(LONG, False)]) == (0, 0)


def test_openai_caches_every_prompt_in_128_token_steps():
    cache = PromptCache(min_tokens=1024)
    assert cache.openai("m", LONG) == 0
    assert cache.openai("m", LONG) == 1024 + 128 * ((len(LONG) // 4 - 1024) // 128)
    assert cache.openai("m", LONG[:2000]) == 0  # under 1,024 tokens: never cached
    assert cache.openai("m", "other" + LONG) == 0  # a prefix must match from the first token


def test_prices_read_and_write_tokens_apart():
    price = PriceConfig(
        input_per_mtok=3.0, output_per_mtok=15.0, cache_read_per_mtok=0.3, cache_write_per_mtok=3.75
    )
    c = Completion(text="x", stop_reason="stop", tokens_in=1_000_000, tokens_out=0, model="m",
                   tokens_cache_read=500_000, tokens_cache_write=250_000)  # fmt: skip
    assert request_cost(price, c) == pytest.approx(0.25 * 3.0 + 0.5 * 0.3 + 0.25 * 3.75)
    unset = PriceConfig(input_per_mtok=3.0)  # no cache prices: all input at the input price
    assert request_cost(unset, c) == pytest.approx(3.0)


async def _dialogue(config, url, role):
    """Three turns of one conversation with a long system prompt, as dialogue.py sends them."""
    async with Gateway(config.llm, url) as gw:
        messages = [{"role": "user", "content": "What is 17 * 23? " * 10}]
        for turn in range(3):
            reply = await gw.chat(role, messages, system=LONG, prompt_ref="t@1")
            messages += [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": f"Not quite; check step {turn}. " * 5},
            ]
        return gw.stats


@pytest.mark.parametrize("role", ["judge", "teacher"])  # judge: Anthropic; teacher: OpenAI
def test_a_conversation_reads_its_earlier_turns_from_the_prompt_cache(make_config, role):
    prices = {
        "sim-judge": {"input_per_mtok": 3.0, "cache_read_per_mtok": 0.3,
                      "cache_write_per_mtok": 3.75},
        "sim-teacher": {"input_per_mtok": 3.0, "cache_read_per_mtok": 1.5},
    }  # fmt: skip
    config = make_config(prices=prices)
    with running_sim(SimConfig(seed=1)) as url:
        stats = asyncio.run(_dialogue(config, url, role))
        served = httpx.get(f"{url}/_sim/stats").json()
    # Turns 2 and 3 read at least the system prompt (~1,500 tokens) and turn 3 more.
    assert stats.tokens_cache_read >= 2 * 1024
    assert stats.tokens_cache_read == served["cache_read_tokens"]
    assert stats.tokens_cache_write == served.get("cache_write_tokens", 0)
    if role == "judge":
        assert stats.tokens_cache_write >= len(LONG) // 4  # Anthropic charges writes
    uncached = stats.tokens_in * 3.0 / 1e6
    assert stats.cost_usd < uncached  # what the cache saved is in the cost


def test_prompt_cache_off_sends_no_breakpoints(make_config):
    providers = {
        "sim_openai": {"kind": "openai_compatible", "base_url": "sim"},
        "sim_anthropic": {"kind": "anthropic", "base_url": "sim", "prompt_cache": False},
    }
    with running_sim(SimConfig(seed=1)) as url:
        stats = asyncio.run(_dialogue(make_config(providers=providers), url, "judge"))
    assert (stats.tokens_cache_read, stats.tokens_cache_write) == (0, 0)
