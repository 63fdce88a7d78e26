import asyncio
import time

import httpx
import pytest
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.errors import ProviderError
from raspberry.llm import Gateway
from raspberry.llm.providers import scrub

MSG = [{"role": "user", "content": "Calculate 2 + 2."}]


def _requests(url: str) -> int:
    return httpx.get(f"{url}/_sim/stats").json().get("requests", 0)


async def _chat(config, url, role="teacher", **kw):
    async with Gateway(config.llm, url) as gw:
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
            async with Gateway(config.llm, url) as gw:
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
            async with Gateway(make_config().llm, url) as gw:
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
        async with Gateway(config.llm, sim_url) as gw:
            with pytest.raises(ProviderError, match="HTTP 404"):
                await gw.chat("judge", MSG, prompt_ref="p@1")
            return gw.stats

    stats = asyncio.run(go())
    assert stats.requests_sent == 1 and stats.retries == 0


def test_scrub_removes_keys():
    assert scrub("bad key sk-abc123 given", ["sk-abc123"]) == "bad key [redacted] given"


def test_changed_base_url_misses_the_cache(tmp_path, make_config, sim_url):
    # The same server reached under another configured address is another endpoint.
    asyncio.run(_chat(make_config(), sim_url))
    data = make_config().model_dump()
    providers = data["providers"]
    providers["sim_openai"] = {"kind": "openai_compatible", "base_url": sim_url}
    _, stats = asyncio.run(_chat(make_config(providers=providers), None))
    assert (stats.requests_sent, stats.cache_hits) == (1, 0)


def test_reordered_input_rows_hit_the_cache(make_config, sim_url):
    from raspberry.stages.dialogues.loop import run_dialogues
    from raspberry.stages.dialogues.stage import dialogue_prompts
    from tests.conftest import rg_questions

    config = make_config()
    questions = rg_questions("chain_sum", 6)

    async def run(qs):
        async with Gateway(config.llm, sim_url) as gw:
            rows = await run_dialogues(gw, qs, config.dialogues, dialogue_prompts(config), "k")
            return rows, gw.stats

    first, s1 = asyncio.run(run(questions))
    again, s2 = asyncio.run(run(list(reversed(questions))))
    assert s1.requests_sent > 0 and s2.requests_sent == 0
    assert {d.id: d.turns for d in first} == {d.id: d.turns for d in again}


def _priced(make_config, max_usd):
    # At $10,000 per million tokens a judge request costs about $1 and at most about $2.5
    # (its input estimate and max_tokens of output), which is what the budget reserves.
    prices = {"sim-judge": {"input_per_mtok": 10_000, "output_per_mtok": 10_000}}
    models = make_config().model_dump()["models"]
    models["judge"]["max_tokens"] = 200
    return make_config(prices=prices, budget={"max_usd": max_usd}, models=models)


def test_budget_stops_new_requests_and_keeps_what_was_paid_for(make_config, sim_url):
    from raspberry.errors import BudgetExceeded

    config = _priced(make_config, 3.0)

    async def ask(n, build_id):
        async with Gateway(config.llm, sim_url, build_id=build_id) as gw:
            results = []
            for i in range(n):  # one at a time, as scheduling would
                try:
                    await gw.chat(
                        "judge", [{"role": "user", "content": f"{build_id}{i}"}], prompt_ref="p"
                    )
                    results.append("ok")
                except BudgetExceeded as exc:
                    results.append(str(exc))
            return results, gw.stats

    results, stats = asyncio.run(ask(10, "b1"))
    paid = results.count("ok")
    assert 1 <= paid < 10 and stats.requests_sent == paid
    assert "budget reached" in results[-1] and "rerun the same build id" in results[-1]
    assert 0 < stats.cost_usd <= 3.0  # stopped before the budget, never past it
    # A rerun of the build id: what was paid comes back from the cache; nothing new is sent.
    results, stats = asyncio.run(ask(10, "b1"))
    assert results.count("ok") == paid and stats.requests_sent == 0
    # Another build id has its own budget.
    _, stats = asyncio.run(ask(1, "b2"))
    assert stats.requests_sent == 1


def test_circuit_breaker_fails_fast_when_the_provider_keeps_failing(make_config):
    config = make_config(
        gateway={
            "cache_path": str(make_config().gateway.cache_path),
            "max_retries": 50,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.02,
            "breaker_failures": 5,
            "breaker_cooldown_s": 60,
        }
    )
    with running_sim(SimConfig(error_rate=1.0, seed=2)) as url:

        async def go():
            async with Gateway(config.llm, url) as gw:
                started = time.monotonic()
                with pytest.raises(ProviderError, match="circuit breaker open after 5 failures"):
                    await gw.chat("judge", MSG, prompt_ref="p@1")
                with pytest.raises(ProviderError, match="circuit breaker open"):
                    await gw.chat("judge", [{"role": "user", "content": "x"}], prompt_ref="p@1")
                return time.monotonic() - started, gw.stats

        elapsed, stats = asyncio.run(go())
    assert stats.requests_sent == 5  # the second call was refused without a request
    assert elapsed < 5


@pytest.mark.parametrize("mode", ["fixed", "sliding", "bucket"])
def test_limit_learnt_from_headers_keeps_429s_rare(make_config, mode):
    # 600/min enforced per second (10/s) in each way providers do, 60 requests at once and no
    # limit configured: the first burst meets 429s (at most 50), whose headers teach the gateway
    # 10/s; no retry meets another.
    config = make_config()
    with running_sim(SimConfig(rpm=600, seed=2, limit_mode=mode)) as url:

        async def go():
            async with Gateway(config.llm, url) as gw:
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        gw.chat("teacher", [{"role": "user", "content": f"l{i}"}], prompt_ref="p")
                        for i in range(60)
                    )
                )
                return time.monotonic() - started, gw.stats

        elapsed, stats = asyncio.run(go())
    assert stats.rate_limited <= 50 + 2
    assert stats.requests_sent == 60 + stats.retries
    assert 4.5 <= elapsed < 12.0


def test_cache_records_usage_cost_and_paying_build(make_config, sim_url, tmp_path):
    from raspberry.llm.cache import RequestCache

    config = _priced(make_config, None)

    async def go():
        async with Gateway(config.llm, sim_url, build_id="paid") as gw:
            await gw.chat("judge", [{"role": "user", "content": "stats"}], prompt_ref="p@1")

    asyncio.run(go())
    cache = RequestCache(config.gateway.cache_path)
    stats = cache.stats()
    cache.close()
    assert stats["models"]["sim-judge"]["responses"] == 1
    assert stats["models"]["sim-judge"]["cost_usd"] > 0
    assert stats["builds"]["paid"]["responses_paid"] == 1


def test_a_new_cache_opened_by_many_threads_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from raspberry.llm.cache import RequestCache

    path = tmp_path / "fresh" / "cache.sqlite"
    with ThreadPoolExecutor(8) as pool:
        caches = list(pool.map(lambda _: RequestCache(path), range(8)))
    assert all(c.count() == 0 for c in caches)
    for c in caches:
        c.close()


def test_a_cache_from_before_the_usage_columns_and_the_books_is_upgraded(tmp_path):
    import sqlite3

    from raspberry.llm.cache import RequestCache
    from raspberry.llm.types import Completion

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
        "completion TEXT NOT NULL, created_at REAL NOT NULL)"
    )
    old.execute(  # a ledger from before unconfirmed lines, with a line of an earlier build
        "CREATE TABLE ledger (build_id TEXT NOT NULL, key TEXT NOT NULL, "
        "cost_usd FLOAT NOT NULL, created_at FLOAT NOT NULL)"
    )
    old.execute("INSERT INTO ledger VALUES ('a', 'k', 0.5, 0)")
    kept = Completion(text="kept", stop_reason="stop", tokens_in=1, tokens_out=1, model="m")
    old.execute("INSERT INTO responses VALUES ('k', 'm', ?, 0)", (kept.model_dump_json(),))
    old.commit()
    old.close()
    cache = RequestCache(path)
    assert cache.get("k").text == "kept"
    cache.put("k2", kept, "b")
    assert cache.stats()["builds"] == {
        "a": {"responses_paid": 1, "cost_usd": 0.5, "unconfirmed_usd": 0.0},
        "b": {"responses_paid": 1, "cost_usd": 0.0, "unconfirmed_usd": 0.0},
    }
    cache.close()


def test_a_rate_limit_wait_beyond_max_wait_fails_with_its_reason(make_config):
    data = make_config().model_dump()
    data["providers"]["sim_anthropic"]["limits"] = {"sim-judge": {"rpm": 1}}
    data["gateway"]["max_wait_s"] = 5
    config = make_config(providers=data["providers"], gateway=data["gateway"])
    with running_sim(SimConfig(seed=2)) as url:  # its own port: its own limits

        async def go():
            async with Gateway(config.llm, url) as gw:
                await gw.chat("judge", [{"role": "user", "content": "w1"}], prompt_ref="p")
                with pytest.raises(ProviderError, match="rate-limit slot is .* away"):
                    await gw.chat("judge", [{"role": "user", "content": "w2"}], prompt_ref="p")
                return gw.stats

        stats = asyncio.run(go())
    assert stats.requests_sent == 1


def _with_concurrency(make_config, n: int):
    gateway = {**make_config().model_dump()["gateway"], "max_concurrency": n}
    return make_config(gateway=gateway)


def test_a_providers_models_share_its_connections_and_none_waits_for_one(make_config):
    # Teacher and stand-in are both on sim_openai: 4 slots between them, not 4 each, so no
    # admitted request sits in the SDK's pool waiting for a connection (time its timeout counts).
    config = _with_concurrency(make_config, 4)
    with running_sim(SimConfig(latency_ms=300, seed=2)) as url:

        async def go():
            async with Gateway(config.llm, url) as gw:
                return await asyncio.gather(
                    *(
                        gw.chat(role, [{"role": "user", "content": f"{role} {i}"}], prompt_ref="p")
                        for i in range(8)
                        for role in ("teacher", "user_standin")
                    )
                )

        replies = asyncio.run(go())
        peak = httpx.get(f"{url}/_sim/stats").json()["peak_in_flight"]
    assert peak == 4
    # Waiting for a connection would make a request take two server latencies (0.6 s) or more.
    assert max(r.latency_s for r in replies) < 0.5


def test_when_slots_are_short_lower_priority_numbers_are_sent_first(make_config):
    config = _with_concurrency(make_config, 1)
    with running_sim(SimConfig(latency_ms=100, seed=2)) as url:

        async def go():
            done: list[str] = []
            async with Gateway(config.llm, url) as gw:

                async def call(name: str, role: str, priority: int) -> None:
                    msg = [{"role": "user", "content": name}]
                    await gw.chat(role, msg, prompt_ref="p", priority=priority)
                    done.append(name)

                first = asyncio.ensure_future(call("first", "teacher", 0))
                await asyncio.sleep(0.05)  # it holds the only slot
                await asyncio.gather(
                    first,
                    call("deep", "teacher", 5),
                    call("nudge", "user_standin", 1),
                    call("fresh", "teacher", 0),
                )
            return done

        assert asyncio.run(go()) == ["first", "fresh", "nudge", "deep"]


def test_an_empty_completion_is_retried_paid_and_never_cached(make_config):
    """Issue 18: empty completions were cached as answers and lost their rows for good."""
    from raspberry.llm.cache import RequestCache

    data = make_config().model_dump()
    data["gateway"]["max_retries"] = 2
    config = make_config(gateway=data["gateway"])
    with running_sim(SimConfig(empty_rate=1.0, seed=2)) as url:

        async def ask():
            async with Gateway(config.llm, url, build_id="b") as gw:
                await gw.chat("teacher", MSG, prompt_ref="p@1")

        with pytest.raises(ProviderError, match="empty completion 3 times"):
            asyncio.run(ask())
        assert _requests(url) == 3
    cache = RequestCache(config.gateway.cache_path)
    assert cache.count() == 0  # nothing kept...
    assert cache.stats()["builds"]["b"]["responses_paid"] == 3  # ...but every one paid for
    cache.close()
    with running_sim(SimConfig(empty_rate=0.5, seed=5)) as url:  # faults that pass: answered
        reply, stats = asyncio.run(_chat(config, url))
        assert reply.text.strip() and stats.requests_sent >= 1


def test_a_truncated_completion_is_returned_but_asked_again_next_time(make_config, sim_url):
    models = make_config().model_dump()["models"]
    models["teacher"]["max_tokens"] = 5
    config = make_config(models=models)
    first, s1 = asyncio.run(_chat(config, sim_url))
    second, s2 = asyncio.run(_chat(config, sim_url))
    assert first.stop_reason == "max_tokens" and second.stop_reason == "max_tokens"
    assert (s1.requests_sent, s2.requests_sent, s2.cache_hits) == (1, 1, 0)


def _embedder(make_config, provider="sim_openai"):
    config = make_config()
    models = {
        **config.model_dump()["models"],
        "embedder": {"provider": provider, "model": "sim-embed"},
    }
    return make_config(models=models, prices={"sim-embed": {"input_per_mtok": 0.02}})


async def _embed(config, url, texts, build_id="b"):
    async with Gateway(config.llm, url, build_id=build_id) as gw:
        return await gw.embed("embedder", texts), gw.stats


def test_embeddings_are_unit_vectors_cached_per_text_and_paid_once(make_config, sim_url):
    from raspberry.llm.books import paid

    config = _embedder(make_config)
    texts = [
        "Tom has 4 apples and buys 7 more. How many apples does he have?",
        "If Tom owns four apples and purchases seven more, how many apples does he have?",
        "A train travels 60 miles per hour for 3 hours. How far does it go?",
    ]
    before = _requests(sim_url)
    first, s1 = asyncio.run(_embed(config, sim_url, texts))
    assert _requests(sim_url) == before + 1  # one request for all three
    assert s1.cache_hits == 0 and s1.cost_usd > 0
    assert all(abs(float(v @ v) - 1) < 1e-5 for v in first)
    assert float(first[0] @ first[1]) > 0.8 > 0.2 > float(first[0] @ first[2])
    # A new text among cached ones: only it is sent, and each cached vector comes back as it was.
    again, s2 = asyncio.run(
        _embed(config, sim_url, [texts[2], "Something else entirely.", texts[0]])
    )
    assert _requests(sim_url) == before + 2 and s2.cache_hits == 2
    assert (again[0] == first[2]).all() and (again[2] == first[0]).all()
    assert paid(config.gateway.cache_path, "b").usd == pytest.approx(s1.cost_usd + s2.cost_usd)


def test_an_embedder_on_anthropic_is_refused_in_one_line(tmp_path):
    from conftest import config_dict, run_cli, write_config

    data = config_dict(tmp_path)
    data["models"]["embedder"] = {"provider": "sim_anthropic", "model": "sim-embed"}
    result = run_cli("build", "--config", str(write_config(tmp_path, data)))
    assert result.returncode == 2
    assert "models.embedder: provider 'sim_anthropic' is Anthropic, which has no embeddings" in (
        result.stderr
    )
    assert not (tmp_path / "builds").exists()
