"""A fleet of self-hosted servers behind one provider: least outstanding requests first, a
failed server taken out and tried again later, and each server's limits its own."""

import asyncio
import socket

import httpx
import pytest
from conftest import config_dict, run_cli, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.llm import Gateway
from raspberry.llm.fleet import Fleet
from raspberry.llm.shared_limits import limits_for
from raspberry.stages.config import load_config


def _dead_url() -> str:
    """A loopback port nobody listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _served(url: str) -> int:
    return httpx.get(f"{url}/_sim/stats").json().get("model:sim-teacher", 0)


def test_a_dead_server_is_taken_out_and_the_busy_one_gets_less(tmp_path):
    dead = _dead_url()
    with running_sim(SimConfig(latency_ms=300)) as slow, running_sim(SimConfig()) as fast:
        data = config_dict(tmp_path)
        data["providers"]["fleet"] = {"kind": "openai_compatible", "base_url": [slow, dead, fast],
                                      "limits": {"*": {"rpm": 6000}}}  # fmt: skip
        data["models"]["teacher"] = {"provider": "fleet", "model": "sim-teacher"}
        data["gateway"] = {**data["gateway"], "max_retries": 4, "breaker_cooldown_s": 60}
        config = load_config(write_config(tmp_path, data))

        async def ask() -> tuple[list, object]:
            async with Gateway(config.llm, None) as gw:
                replies = []
                for start in range(0, 90, 30):  # waves of 30 at once
                    replies += await asyncio.gather(*(
                        gw.chat("teacher", [{"role": "user", "content": f"What is {i} + 1?"}],
                                prompt_ref="p@1")
                        for i in range(start, start + 30)
                    ))  # fmt: skip
                return replies, gw.stats

        replies, stats = asyncio.run(ask())
        on_slow, on_fast = _served(slow), _served(fast)
        in_use = limits_for(config.gateway.state()).shared()
    assert len(replies) == 90 and all(r.text for r in replies)
    assert on_slow + on_fast == 90
    # The first wave found the dead server; after that it was out of service.
    assert stats.retries <= 12
    # Least outstanding: the server that answers in 300 ms takes fewer of each wave.
    assert on_fast > on_slow > 0
    assert f"{slow}/v1|sim-teacher" in in_use and f"{fast}/v1|sim-teacher" in in_use


def test_a_server_back_from_its_cooldown_is_tried_again():
    now = [0.0]

    class Endpoint:
        def __init__(self, name: str):
            self.name, self.base_url = name, name

    a, b = Endpoint("a"), Endpoint("b")
    fleet = Fleet([a, b], cooldown_s=30, clock=lambda: now[0])  # type: ignore[list-item]
    first = fleet.pick()
    fleet.done(first, failed=True)
    other = b if first is a else a
    assert [fleet.pick() for _ in range(3)] == [other] * 3
    assert fleet.out_of_service() == [first.name]
    now[0] = 31
    assert fleet.pick() is first  # back, and the least busy


@pytest.mark.parametrize(
    ("base_url", "message"),
    [([], "an empty list"), (["sim", "http://127.0.0.1:1"], "'sim' stands alone"),
     (["http://127.0.0.1:1", "http://127.0.0.1:1"], "listed twice")],
)  # fmt: skip
def test_a_bad_fleet_is_one_line(tmp_path, base_url, message):
    data = config_dict(tmp_path)
    data["providers"]["fleet"] = {"kind": "openai_compatible", "base_url": base_url}
    out = run_cli("build", "--config", str(write_config(tmp_path, data)), "--dry-run")
    assert out.returncode == 2 and message in out.stderr, out.stderr
