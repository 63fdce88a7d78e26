"""Rate-limit machinery without a server: header parsing, buckets, concurrency gate, breaker."""

import asyncio
import time

import pytest

from raspberry.llm.gates import CircuitBreaker, Gate
from raspberry.llm.limits import (
    Bucket,
)
from raspberry.llm.rate_headers import RateLimitInfo, parse_duration, parse_rate_headers
from raspberry.llm.shared_limits import SharedLimits

NOW = 1_800_000_000.0  # a fixed wall-clock time for Anthropic's absolute reset times


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@pytest.mark.parametrize(
    "text, seconds",
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5s", 0.5)],
)
def test_openai_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5", "1x"])
def test_unreadable_durations_are_none(text):
    assert parse_duration(text) is None


def test_openai_headers_give_limits_and_exhaustion():
    headers = {
        "x-ratelimit-limit-requests": "6000",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "750ms",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "1999000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    info = parse_rate_headers("openai_compatible", headers, NOW)
    assert info.limits == {"requests": 6000, "tokens": 2_000_000}
    # Only the exhausted budget counts, and only until one request's share of its reset: the
    # limit replenishes continuously, and the bucket paces the rest at 6,000 a minute.
    assert info.exhausted_for == pytest.approx(0.75 / 6000)


def test_anthropic_headers_give_separate_input_and_output_limits():
    headers = {
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
        "anthropic-ratelimit-requests-reset": _iso(NOW + 1),
        "anthropic-ratelimit-input-tokens-limit": "400000",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": _iso(NOW + 12),
        "anthropic-ratelimit-output-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "79000",
        "anthropic-ratelimit-output-tokens-reset": _iso(NOW + 3),
    }
    info = parse_rate_headers("anthropic", headers, NOW)
    assert info.limits == {"requests": 4000, "input_tokens": 400_000, "output_tokens": 80_000}
    assert info.exhausted_for == pytest.approx(12.0 / 400_000)


def test_missing_or_garbled_headers_say_nothing():
    for kind in ("openai", "anthropic"):
        info = parse_rate_headers(kind, {"x-ratelimit-limit-requests": "lots"}, NOW)
        assert info.limits == {} and info.exhausted_for == 0.0


def test_bucket_spaces_requests_at_its_rate():
    bucket = Bucket(per_minute=600)  # 10/s less headroom
    now = time.monotonic()
    waits = [bucket.reserve(1, now) for _ in range(21)]
    assert waits[0] == 0.0
    # After the small burst, each request waits one more interval than the one before.
    assert waits[-1] == pytest.approx(20 / bucket.rate, abs=0.25)
    assert all(b >= a for a, b in zip(waits, waits[1:], strict=False))
    assert bucket.rate < 10.0  # never the full published rate


@pytest.fixture
def limits(tmp_path):
    """Rate limits on a fresh gateway state (a SQLite file), as one process sees them."""
    return SharedLimits(str(tmp_path / "state.sqlite"))


def test_pause_spreads_queued_requests_after_it_ends(limits):
    key = ("http://x", "m")
    limits.seed(key, {"requests": 600})
    limits.pause(key, 2.0)
    waits = [limits.reserve(key, 10) for _ in range(5)]
    assert waits[0] >= 2.0
    assert waits[-1] - waits[0] == pytest.approx(4 / (10 * 0.99), abs=0.05)


def test_headers_override_the_configured_limit_and_config_does_not_undo_it(limits):
    key = ("http://x", "m")
    limits.seed(key, {"requests": 60})
    limits.learn(key, RateLimitInfo(limits={"requests": 6000}))
    limits.seed(key, {"requests": 60})  # another shard's gateway starting later
    waits = [limits.reserve(key, 1) for _ in range(50)]
    assert waits[-1] < 1.0  # ~99/s; at the configured 60/min the 50th would wait ~50 s


def test_output_tokens_are_charged_after_the_fact(limits):
    key = ("http://x", "m")
    limits.seed(key, {"output_tokens": 60_000})  # 1,000 per second
    assert limits.reserve(key, 10) == 0.0
    limits.spend_output(key, 5_000)  # a long answer: about 5 s of the output budget
    assert limits.reserve(key, 10) == pytest.approx(5.0, rel=0.1)


async def _full_gate(ceiling: int, model: str) -> Gate:
    gate = Gate(ceiling)
    for _ in range(ceiling):
        await gate.acquire(model)
    return gate


def test_gate_cuts_a_model_on_429_and_recovers_slowly():
    async def go():
        gate = await _full_gate(10, "m")
        blocked = asyncio.ensure_future(gate.acquire("m"))
        await asyncio.sleep(0)
        assert not blocked.done()
        gate.rate_limited("m")
        gate.rate_limited("m")  # the same burst of 429s: one cut only
        assert gate.model("m").limit == pytest.approx(7.0)
        for _ in range(3):
            gate.release("m")
        await asyncio.sleep(0)
        assert not blocked.done()  # 7 in flight, limit 7
        gate.release("m")
        await asyncio.sleep(0)
        assert blocked.done()
        for _ in range(7):
            gate.succeeded("m")
        assert 7.0 < gate.model("m").limit < 9.0  # additive increase: about one slot per window

    asyncio.run(go())


def test_gate_slots_are_shared_by_the_providers_models_and_cut_per_model():
    async def go():
        gate = await _full_gate(3, "teacher")
        standin = asyncio.ensure_future(gate.acquire("standin"))
        await asyncio.sleep(0)
        assert not standin.done()  # the provider's three connections are taken
        gate.rate_limited("teacher")  # teacher: 3 -> 2 slots
        teacher = asyncio.ensure_future(gate.acquire("teacher", priority=0))
        late_standin = asyncio.ensure_future(gate.acquire("standin", priority=5))
        await asyncio.sleep(0)
        gate.release("teacher")
        await asyncio.sleep(0)
        # The teacher waiter ranks first, but its model is at its cut limit: the stand-in goes.
        assert standin.done() and not teacher.done() and not late_standin.done()
        gate.release("teacher")
        await asyncio.sleep(0)
        assert teacher.done() and not late_standin.done()
        assert gate.in_flight == 3 and gate.model("standin").limit == 3.0

    asyncio.run(go())


def test_gate_serves_the_lowest_priority_number_first_then_in_arrival_order():
    async def go():
        gate, order = Gate(1), []
        await gate.acquire("m")

        async def wait(name: str, priority: int) -> None:
            await gate.acquire("m", priority)
            order.append(name)
            gate.release("m")

        waiters = [
            asyncio.ensure_future(wait(name, priority))
            for name, priority in (("c", 3), ("a1", 1), ("b", 2), ("a2", 1), ("z", 0))
        ]
        await asyncio.sleep(0)
        gate.release("m")
        await asyncio.gather(*waiters)
        assert order == ["z", "a1", "a2", "b", "c"]

    asyncio.run(go())


def test_cancelled_waiter_does_not_leak_a_slot():
    async def go():
        gate = Gate(1)
        await gate.acquire("m")
        waiter = asyncio.ensure_future(gate.acquire("m"))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
        gate.release("m")
        assert gate.in_flight == 0
        await asyncio.wait_for(gate.acquire("m"), 1)

    asyncio.run(go())


def test_breaker_opens_after_failures_in_a_row_and_probes_after_cooldown():
    breaker = CircuitBreaker(threshold=3, cooldown_s=0.05)
    for _ in range(2):
        breaker.failed("HTTP 500")
    breaker.succeeded()  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failed("HTTP 500")
    assert not breaker.allow()
    time.sleep(0.06)
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    breaker.succeeded()
    assert breaker.allow()


def test_a_pause_inside_booked_time_costs_nothing():
    # Headers saying "exhausted until the next second" arrive while requests are already booked
    # past it: the pause must not push those bookings further.
    bucket = Bucket(per_minute=600)
    now = time.monotonic()
    for _ in range(20):
        bucket.reserve(1, now)
    before = bucket.reserve(0, now)
    bucket.pause_until(now + 0.5, now)
    assert bucket.reserve(0, now) == pytest.approx(before)
    bucket.pause_until(now + 5.0, now)  # a longer pause does move them
    assert bucket.reserve(0, now) == pytest.approx(5.0)


def test_requests_booked_before_a_429_are_booked_again_after_its_pause(limits):
    key = ("p", "m")
    limits.seed(key, {"requests": 6000})
    booked_at = limits.clock()
    waits = [limits.reserve(key, 0) for _ in range(50)]  # booked 10 ms apart
    assert max(waits) > 0.4
    assert limits.rebook(key, 0, booked_at) == 0  # no 429 since: the booking stands
    limits.pause(key, 0.8)
    again = limits.rebook(key, 0, booked_at)
    assert again >= 0.8  # after the pause, not at the old booking's time
    assert limits.rebook(key, 0, limits.clock()) == 0  # booked after the pause: stands


def test_a_429_in_one_process_cuts_every_process_s_concurrency(tmp_path):
    """Two processes' views of one gateway state: a burst of 429s in one cuts the shared
    factor once; the other's gate takes the cut at its next booking; successes regrow it."""
    state = str(tmp_path / "state.sqlite")
    one, two = SharedLimits(state), SharedLimits(state)
    key = ("http://x", "m")
    assert one.cut(key) == pytest.approx(0.7)
    assert one.cut(key) == pytest.approx(0.7)  # the same burst: one cut
    assert two.factor(key) == 1.0  # not seen yet...
    two.reserve(key, 0)
    assert two.factor(key) == pytest.approx(0.7)  # ...seen at its next booking
    gate = Gate(ceiling=100)
    gate.cap("m", two.factor(key))
    assert gate.model("m").limit == pytest.approx(70)
    for _ in range(70):  # a window of successes regrows about one slot, as the gate's own
        two.succeeded(key, 100)
    two.reserve(key, 0)
    assert 0.705 < two.factor(key) < 0.715
