"""The progress board: sums over gateways, items and ETA, and sinks fed until the end."""

import asyncio

import pytest

from raspberry.llm.gateway import GatewayStats
from raspberry.llm.progress import BOARD, Board, Reporter, gather_counted


def test_board_sums_live_and_finished_gateways():
    board = Board()
    a, b = GatewayStats(requests_sent=3, in_flight=2, cost_usd=0.5), GatewayStats(rate_limited=4)
    board.attach(a)
    board.attach(b)
    board.detach(b)  # a finished gateway's counts stay; its in-flight count does not
    board.add_items(10)
    for _ in range(4):
        board.item_done()
    snap = board.snapshot()
    assert (snap.requests_sent, snap.in_flight, snap.rate_limited) == (3, 2, 4)
    assert snap.cost_usd == pytest.approx(0.5)
    assert snap.percent == pytest.approx(40.0)
    assert snap.eta_s == pytest.approx(snap.elapsed_s / 4 * 6)
    assert "4/10 items (40%)" in snap.line("dialogues") and "4 × 429" in snap.line("dialogues")


def test_gather_counted_counts_items_and_waits_for_all_before_raising():
    finished = []

    async def job(i):
        await asyncio.sleep(0.01 * i)
        if i == 0:
            raise ValueError("first fails at once")
        finished.append(i)
        return i

    seen = []
    with Reporter([seen.append], every_s=60):
        with pytest.raises(ValueError):
            asyncio.run(gather_counted(job(i) for i in range(5)))
    # The failing job did not cut the others short: their answers would have been paid for.
    assert sorted(finished) == [1, 2, 3, 4]
    assert seen[-1].items_total == 5 and seen[-1].items_done == 4
    assert BOARD.snapshot().items_done == 4


def test_a_failing_sink_does_not_stop_the_others():
    seen = []

    def broken(_snap):
        raise RuntimeError("the UI is down")

    with Reporter([broken, seen.append], every_s=0.01):
        asyncio.run(asyncio.sleep(0.05))
    assert len(seen) >= 2
