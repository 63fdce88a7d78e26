import asyncio
import time

import httpx
import pytest

from raspberry.config import SimConfig
from raspberry.errors import ProviderError
from raspberry.llm import Gateway
from raspberry.llm.providers import scrub
from raspberry.sim.process import running_sim

MSG = [{"role": "user", "content": "Calculate 2 + 2."}]


def _requests(url: str) -> int:
    return httpx.get(f"{url}/_sim/stats").json().get("requests", 0)


async def _chat(config, url, role="teacher", **kw):
    async with Gateway(config, url) as gw:
        reply = await gw.chat(
            role, kw.pop("messages", MSG), prompt_ref=kw.pop("prompt", "p@1"), **kw
        )
        return reply, gw.stats


def test_second_identical_request_is_served_from_the_durable_cache(make_config, sim_url):
    config = make_config()
    before = _requests(sim_url)
    first, s1 = asyncio.run(_chat(config, sim_url, system="S"))
    second, s2 = asyncio.run(_chat(config, sim_url, system="S"))  # a new gateway: a new process
    assert _requests(sim_url) == before + 1
    assert (s1.requests_sent, s1.cache_hits) == (1, 0)
    assert (s2.requests_sent, s2.cache_hits) == (0, 1)
    assert second.text == first.text and second.cached and not first.cached


@pytest.mark.parametrize(
    "change",
    [
        {"system": "other system"},
        {"prompt": "p@2"},
        {"sample_index": 1},
        {"messages": [{"role": "user", "content": "Calculate 2 + 3."}]},
    ],
)
def test_cache_key_sensitivity(make_config, sim_url, change):
    config = make_config()
    asyncio.run(_chat(config, sim_url, system="S"))
    _, stats = asyncio.run(_chat(config, sim_url, **{"system": "S", **change}))
    assert (stats.requests_sent, stats.cache_hits) == (1, 0)


def test_changed_parameter_misses_the_cache(tmp_path, make_config, sim_url):
    asyncio.run(_chat(make_config(), sim_url))
    models = make_config().model_dump()["models"]
    models["teacher"]["temperature"] = 0.1
    _, stats = asyncio.run(_chat(make_config(models=models), sim_url))
    assert stats.requests_sent == 1


def test_retries_5xx_until_success(make_config):
    config = make_config()
    config = config.model_copy(
        update={"gateway": config.gateway.model_copy(update={"max_retries": 12})}
    )
    with running_sim(SimConfig(error_rate=0.5, seed=2)) as url:

        async def many(config):
            async with Gateway(config, url) as gw:
                replies = await asyncio.gather(
                    *(
                        gw.chat("judge", [{"role": "user", "content": f"q{i}"}], prompt_ref="p@1")
                        for i in range(20)
                    )
                )
                return replies, gw.stats

        replies, stats = asyncio.run(many(config))
        assert len(replies) == 20 and all(r.text for r in replies)
        assert stats.retries > 0 and stats.requests_sent == 20 + stats.retries


def test_429_waits_for_retry_after(make_config):
    with running_sim(SimConfig(rpm=60, seed=2)) as url:  # one request per second

        async def three():
            async with Gateway(make_config(), url) as gw:
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        gw.chat("judge", [{"role": "user", "content": f"r{i}"}], prompt_ref="p@1")
                        for i in range(3)
                    )
                )
                return time.monotonic() - started, gw.stats

        elapsed, stats = asyncio.run(three())
        assert stats.rate_limited >= 1
        assert elapsed >= 1.0  # at most one answer per wall-clock second


def test_client_error_fails_at_once_without_retries(make_config, sim_url):
    models = make_config().model_dump()["models"]
    models["judge"]["model"] = "no-such-model"
    config = make_config(models=models)

    async def go():
        async with Gateway(config, sim_url) as gw:
            with pytest.raises(ProviderError, match="HTTP 404"):
                await gw.chat("judge", MSG, prompt_ref="p@1")
            return gw.stats

    stats = asyncio.run(go())
    assert stats.requests_sent == 1 and stats.retries == 0


def test_scrub_removes_keys():
    assert scrub("bad key sk-abc123 given", ["sk-abc123"]) == "bad key [redacted] given"
