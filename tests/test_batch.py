"""Batch transport against the simulated OpenAI Batch API and Anthropic Message Batches."""

import asyncio

import httpx
import pytest
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.errors import ProviderError
from raspberry.llm import Gateway

FAST = {"batch_poll_s": 0.05, "batch_linger_s": 0.05, "max_retries": 2}
ROLES = {"openai": "teacher", "anthropic": "judge"}  # teacher: sim_openai, judge: sim_anthropic


def _config(make_config, **gateway):
    cache = make_config().gateway.cache_path
    prices = {
        m: {"input_per_mtok": 1000, "output_per_mtok": 1000} for m in ("sim-teacher", "sim-judge")
    }
    return make_config(gateway={"cache_path": cache, **FAST, **gateway}, prices=prices)


def _stats(url: str) -> dict:
    return httpx.get(f"{url}/_sim/stats").json()


async def _ask(config, url, role, n, transport="batch", prefix="q"):
    async with Gateway(config.llm, url, transport=transport) as gw:
        replies = await asyncio.gather(
            *(
                gw.chat(
                    role, [{"role": "user", "content": f"{prefix}{i}: 2 + {i}?"}], prompt_ref="p"
                )
                for i in range(n)
            ),
            return_exceptions=True,
        )
        return replies, gw.stats


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_partial_failures_and_expiries_resend_only_the_missing_requests(make_config, api):
    config = _config(make_config, batch_max_rounds=12)
    sim = SimConfig(batch_delay_s=0.1, batch_error_rate=0.2, batch_expire_rate=0.2, seed=5)
    with running_sim(sim) as url:
        replies, stats = asyncio.run(_ask(config, url, ROLES[api], 40))
        server = _stats(url)
    assert all(not isinstance(r, Exception) and r.text and r.batch for r in replies)
    assert server["batches"] >= 2  # some requests needed a second batch
    # Each round resends only what failed: far fewer than 40 per round.
    assert 40 < server["batch_requests"] < 40 + 40 * 0.6
    assert server.get("requests", 0) == 0  # nothing went through the direct endpoint
    assert stats.requests_sent == 40


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_batch_answers_are_cached_and_discounted(make_config, api):
    config = _config(make_config)
    with running_sim(SimConfig(batch_delay_s=0.05, seed=5)) as url:
        batch_replies, _ = asyncio.run(_ask(config, url, ROLES[api], 5))
        direct_replies, stats = asyncio.run(_ask(config, url, ROLES[api], 5, transport="direct"))
        assert stats.cache_hits == 5 and stats.requests_sent == 0  # the same cache
        fresh, _ = asyncio.run(_ask(config, url, ROLES[api], 5, transport="direct", prefix="z"))
    for b in batch_replies:
        full_price = (b.tokens_in + b.tokens_out) * 1000 / 1e6
        assert b.cost_usd == pytest.approx(full_price * 0.5)
    for d in fresh:
        assert d.cost_usd == pytest.approx((d.tokens_in + d.tokens_out) * 1000 / 1e6)


def test_requests_that_keep_failing_end_with_a_clear_error(make_config):
    config = _config(make_config, batch_max_rounds=2)
    with running_sim(SimConfig(batch_delay_s=0.05, batch_expire_rate=1.0, seed=5)) as url:
        replies, _ = asyncio.run(_ask(config, url, "teacher", 3))
        server = _stats(url)
    assert all(isinstance(r, ProviderError) for r in replies)
    assert "batch request failed in 2 rounds" in str(replies[0])
    assert "expired" in str(replies[0])
    assert server["batch_requests"] == 6


def test_verdicts_stage_by_batch_matches_direct(make_config, sim_url):
    from conftest import run_stage

    from tests.conftest import rg_questions
    from tests.test_dialogue import run_dialogues_now

    questions = rg_questions("chain_sum", 8)
    direct_config = make_config()
    dialogues = run_dialogues_now(direct_config, sim_url, questions)
    direct, _ = run_stage("verdicts", direct_config, sim_url, questions, dialogues)
    # A fresh cache, so that the batch really runs.
    data = direct_config.model_dump()
    batch_config = make_config(
        gateway={**data["gateway"], **FAST, "cache_path": data["gateway"]["cache_path"] + ".b"},
        verdicts={**data["verdicts"], "transport": "batch"},
    )
    batched, stats = run_stage("verdicts", batch_config, sim_url, questions, dialogues)
    assert stats["requests_sent"] > 0
    strip = {"lineage"}
    assert [v.model_dump(exclude=strip) for v in batched] == [
        v.model_dump(exclude=strip) for v in direct
    ]


def test_auto_transport_batches_every_stage_but_the_dialogues(make_config):
    from tests.conftest import rg_questions, run_stage

    questions = rg_questions("chain_sum", 6)
    config = _config(make_config, transport="auto")
    with running_sim(SimConfig(seed=3)) as url:
        dialogues, d_stats = run_stage("dialogues", config, url, questions)
        assert d_stats["requests_sent"] > 0 and _stats(url).get("batch_requests", 0) == 0
        verdicts, v_stats = run_stage("verdicts", config, url, questions, dialogues)
        assert _stats(url)["batch_requests"] == v_stats["requests_sent"] > 0
        _, s_stats = run_stage("sft", config, url, questions, dialogues, verdicts)
        after = _stats(url)["batch_requests"]
        assert (
            after == v_stats["requests_sent"] + s_stats["requests_sent"] > v_stats["requests_sent"]
        )
        # A stage's own transport wins over gateway.transport.
        direct = make_config(
            gateway=config.gateway.model_dump(),
            verdicts={**config.verdicts.model_dump(), "transport": "direct"},
        )
        fresh = direct.model_copy(
            update={
                "gateway": direct.gateway.model_copy(
                    update={"cache_path": str(direct.gateway.cache_path) + ".2"}
                )
            }
        )
        _, again = run_stage("verdicts", fresh, url, questions, dialogues)
        assert again["requests_sent"] > 0 and _stats(url)["batch_requests"] == after
