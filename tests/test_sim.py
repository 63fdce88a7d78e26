"""The simulated server through the official SDKs, unmodified, over real loopback HTTP."""

import asyncio
import time

import anthropic
import httpx
import openai
import pytest
import reasoning_gym
from conftest import FAMILIES
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from raspberry_sim.roles import Behaviour, teacher

from raspberry.verify import check

QUESTION = "Calculate 12 * 3 - 5."


def test_openai_sdk_chat_completion(sim_url):
    client = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="any", max_retries=0)
    resp = client.chat.completions.create(
        model="sim-teacher",
        seed=1,
        messages=[{"role": "system", "content": "think"}, {"role": "user", "content": QUESTION}],
    )
    assert resp.id.startswith("chatcmpl-") and resp.object == "chat.completion"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert "Final answer:" in resp.choices[0].message.content


def test_anthropic_sdk_message(sim_url):
    client = anthropic.Anthropic(base_url=sim_url, api_key="any", max_retries=0)
    resp = client.messages.create(
        model="sim-teacher",
        max_tokens=2000,
        system=[{"type": "text", "text": "think"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
    )
    assert resp.id.startswith("msg_") and resp.type == "message" and resp.role == "assistant"
    assert resp.stop_reason == "end_turn"
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert "Final answer:" in resp.content[0].text


def test_max_tokens_truncates_with_the_right_stop_reason(sim_url):
    oa = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="any", max_retries=0)
    resp = oa.chat.completions.create(
        model="sim-teacher", max_tokens=5, messages=[{"role": "user", "content": QUESTION}]
    )
    assert resp.choices[0].finish_reason == "length" and resp.usage.completion_tokens == 5
    an = anthropic.Anthropic(base_url=sim_url, api_key="any", max_retries=0)
    msg = an.messages.create(
        model="sim-teacher", max_tokens=5, messages=[{"role": "user", "content": QUESTION}]
    )
    assert msg.stop_reason == "max_tokens"


def test_unknown_model_is_a_typed_sdk_error(sim_url):
    oa = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="any", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        oa.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    an = anthropic.Anthropic(base_url=sim_url, api_key="any", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as info:
        an.messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("mode", ["fixed", "sliding", "bucket"])
def test_rate_limit_answers_429_with_retry_after_and_headers(mode):
    with running_sim(SimConfig(rpm=120, seed=1, limit_mode=mode)) as url:  # 2 per second

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient() as client:
                body = {"model": "sim-judge", "messages": [{"role": "user", "content": "x"}]}
                return await asyncio.gather(
                    *(client.post(f"{url}/v1/chat/completions", json=body) for _ in range(6))
                )

        responses = asyncio.run(burst())
        codes = sorted(r.status_code for r in responses)
        # A fixed window's edge may admit 2 more; a sliding window or a full bucket admit 2.
        assert codes.count(200) in ((2, 3, 4) if mode == "fixed" else (2,)) and 429 in codes
        limited = next(r for r in responses if r.status_code == 429)
        assert 0 < float(limited.headers["retry-after"]) <= 1
        assert 0 < float(limited.headers["retry-after-ms"]) <= 1001
        assert limited.json()["error"]["type"] == "rate_limit_exceeded"
        ok = next(r for r in responses if r.status_code == 200)
        assert ok.headers["x-ratelimit-limit-requests"] == "120"

        an = anthropic.Anthropic(base_url=url, api_key="any", max_retries=0)
        with pytest.raises(anthropic.RateLimitError):
            for _ in range(6):
                an.messages.create(
                    model="sim-judge", max_tokens=10, messages=[{"role": "user", "content": "x"}]
                )


def test_error_rate_gives_5xx_sdk_errors():
    with running_sim(SimConfig(error_rate=1.0, seed=1)) as url:
        oa = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            oa.chat.completions.create(
                model="sim-judge", messages=[{"role": "user", "content": "x"}]
            )


@pytest.mark.parametrize("family", FAMILIES)
def test_teacher_solves_from_the_question_text(family):
    """With no planted mistakes the teacher's answers pass the task's own scorer."""
    entries = list(reasoning_gym.create_dataset(family, size=30, seed=11))
    right = 0
    for entry in entries:
        text = teacher(
            [{"role": "user", "content": entry["question"]}], 0, Behaviour(wrong_first_prob=0.0)
        )
        spec = {"kind": "reasoning_gym", "task": family, "entry": entry}
        right += check(spec, text).passed
    # basic_arithmetic's gold uses floor division; true division disagrees on a few items.
    assert right >= 27


def test_teacher_first_attempt_wrong_at_the_configured_rate():
    entries = list(reasoning_gym.create_dataset("chain_sum", size=400, seed=2))
    wrong = 0
    for entry in entries:
        text = teacher(
            [{"role": "user", "content": entry["question"]}],
            0,
            Behaviour(seed=5, wrong_first_prob=0.4),
        )
        wrong += not check(
            {"kind": "reasoning_gym", "task": "chain_sum", "entry": entry}, text
        ).passed
    assert 0.33 < wrong / len(entries) < 0.47  # 400 draws: ±3.5 standard errors


def test_stats_count_requests(sim_url):
    before = httpx.get(f"{sim_url}/_sim/stats").json().get("requests", 0)
    oa = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="any", max_retries=0)
    oa.chat.completions.create(model="sim-judge", messages=[{"role": "user", "content": "y"}])
    assert httpx.get(f"{sim_url}/_sim/stats").json()["requests"] == before + 1


@pytest.mark.parametrize("mode", ["fixed", "sliding", "bucket"])
def test_each_limit_mode_holds_its_rate_and_says_when_a_slot_frees(mode):
    """Requests paced at the limit's own rate (10 a second) all pass under every mode; after an
    exhausting burst, a request sent when the 429 said passes."""
    from raspberry_sim.limits import Limiter

    limiter = Limiter(600, mode)
    time.sleep(1.001 - time.time() % 1)  # a fixed window starts at a whole second
    admitted, started = 0, time.monotonic()
    for i in range(20):
        time.sleep(max(0.0, started + 0.102 * i - time.monotonic()))
        admitted += limiter.admit()[0]
    assert admitted == 20
    while limiter.admit()[0]:
        pass
    ok, wait = limiter.admit()
    assert not ok and 0 < wait <= 1.0
    remaining = limiter.headers("openai")["x-ratelimit-remaining-requests"]
    assert remaining == "0"
    time.sleep(wait + 0.01)
    assert limiter.admit()[0]


def test_the_teacher_writes_code_that_passes_or_fails_the_tests_as_planted():
    """The code family benchmarks/scale_out.py builds on: a right function passes its tests in
    the sandbox, the planted mistake (another factor) fails them."""
    from raspberry_sim.solvers import solve, wrong_answer

    from raspberry.verify import check

    solution = solve("Write a Python function `f3(n)` that returns 7 times n.")
    spec = {"kind": "code", "tests": "assert f3(6) == 42"}
    assert check(spec, f"Here it is.\n\n{solution.answer}").passed
    wrong = check(spec, f"Here it is.\n\n{wrong_answer(solution, 0)}")
    assert not wrong.passed and "the tests fail" in wrong.reason


def test_a_setting_the_simulator_cannot_take_is_one_line():
    from raspberry_sim.config import settings

    from raspberry.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^sim\.latency_ms: Input should be greater"):
        settings({"latency_ms": -1})
    assert settings({"seed": 4}).seed == 4
