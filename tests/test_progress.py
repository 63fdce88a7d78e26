"""The progress board: sums over gateways, items and ETA, and sinks fed until the end."""

import asyncio

import pytest

from raspberry.llm.progress import BOARD, Board, Reporter, gather_counted
from raspberry.llm.types import GatewayStats


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
    assert seen[-1].total == 5 and seen[-1].done == 4
    assert BOARD.snapshot().done == 4


def test_a_failing_sink_does_not_stop_the_others():
    seen = []

    def broken(_snap):
        raise RuntimeError("the UI is down")

    with Reporter([broken, seen.append], every_s=0.01):
        asyncio.run(asyncio.sleep(0.05))
    assert len(seen) >= 2


def _detach_in_order(order: tuple[int, ...]) -> tuple[list[BaseException], int]:
    """Four equal gateways attached in index order, detached from threads in `order`; after each
    detach, the shards still running count on. Returns the errors and the board's total."""
    import threading

    board = Board()
    stats = [GatewayStats(cache_hits=7) for _ in order]  # equal by value
    turns = [threading.Event() for _ in range(len(order) + 1)]
    errors: list[BaseException] = []

    def shard(i: int, k: int) -> None:
        try:
            turns[k].wait(5)
            board.detach(stats[i])
            for j in order[k + 1 :]:
                stats[j].cache_hits += 1
        except BaseException as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)
        finally:
            turns[k + 1].set()

    for s in stats:
        board.attach(s)
    threads = [threading.Thread(target=shard, args=(i, k)) for k, i in enumerate(order)]
    for t in threads:
        t.start()
    turns[0].set()
    for t in threads:
        t.join()
    return errors, board.snapshot().cache_hits


def test_gateways_with_equal_stats_attach_and_detach_in_any_order_from_threads():
    """Issue 24: a gateway whose stats equalled another's (all-cache rebuilds) removed the other's
    entry by value; the other's counters then moved on, and its own detach found nothing."""
    import itertools

    for order in itertools.permutations(range(4)):
        errors, total = _detach_in_order(order)
        assert errors == [], order
        # The k-th to leave had counted 7 + k: each counted once, none lost or doubled.
        assert total == 4 * 7 + 0 + 1 + 2 + 3, order


def test_detaching_twice_or_unknown_stats_changes_nothing():
    board = Board()
    a = GatewayStats(requests_sent=2)
    board.attach(a)
    board.detach(a)
    board.detach(a)
    board.detach(GatewayStats(requests_sent=5))
    assert board.snapshot().requests_sent == 2


def test_a_broken_board_never_fails_a_shard(caplog):
    """Progress is reporting: an error in it is logged once and the gateway's work goes on."""
    board = Board()
    board._live = None  # every attach and detach now fails inside the board
    with caplog.at_level("WARNING", logger="raspberry.llm.progress"):
        for _ in range(3):
            board.attach(GatewayStats())
            board.detach(GatewayStats())
            board.item_done()
    warnings = [r for r in caplog.records if r.name == "raspberry.llm.progress"]
    assert len(warnings) == 1 and "progress" in warnings[0].getMessage()
    assert board.items_done == 3  # the rest of the board still counts


def test_a_stage_total_is_known_before_it_starts_and_progress_never_goes_back():
    """Issue 22: the total grew as shards started (58% -> 57%). Now each shard stands for its
    input rows from the start; a running shard counts by the share of its items finished."""
    from raspberry.llm.progress import in_shard

    board = Board()
    board.reset({0: 10, 1: 30}, "rows")
    seen = [board.snapshot()]
    with in_shard(0):
        board.add_items(5)
        for _ in range(5):
            board.item_done()
            seen.append(board.snapshot())
    with in_shard(1):  # a shard starting late must not lower the percentage
        board.add_items(60)
        seen.append(board.snapshot())
        board.item_done()
        seen.append(board.snapshot())
    board.shard_finished(0)
    seen.append(board.snapshot())
    board.shard_finished(1)
    seen.append(board.snapshot())
    assert {s.total for s in seen} == {40} and {s.unit for s in seen} == {"rows"}
    percents = [s.percent for s in seen]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert seen[5].count() == "9/40 rows"  # shard 0 all gathered but not yet finished: 99%
    assert seen[-1].count() == "40/40 rows" and seen[-1].eta_s is None


def test_the_eta_follows_the_recent_rate(monkeypatch):
    """A stage that started slowly and then sped up: the ETA comes from the last 30 s."""
    import raspberry.llm.progress as progress

    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    board = Board()
    board.reset({0: 1000}, "rows")
    with progress.in_shard(0):
        board.add_items(1000)
        for step in range(100):  # 100 s at 1 row per second
            now[0] += 1
            board.item_done()
            if step % 2:
                board.snapshot()
        for step in range(60):  # then 60 s at 5 rows per second
            now[0] += 1
            for _ in range(5):
                board.item_done()
            if step % 2:
                board.snapshot()
    snap = board.snapshot()
    assert snap.done == 400
    # 600 rows left at the recent 5 rows/s: 120 s (the average since the start would say 240 s).
    assert snap.eta_s == pytest.approx(120, rel=0.05)


def test_a_terminal_build_draws_a_bar_per_stage_with_the_logs_above(tmp_path, prefect_api):
    """The CLI on a terminal (a pseudo-terminal here): one bar per stage with rows done of its
    input rows, and Prefect's log lines on lines of their own, never drawn over a bar."""
    import os
    import pty
    import re
    import subprocess

    from conftest import CLI, ROOT, config_dict, write_config

    config = write_config(tmp_path, config_dict(tmp_path, per_task=2, shards=2))
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"}
    args = ["build", "--config", str(config), "--build-id", "tty"]
    proc = subprocess.Popen([*CLI, *args], cwd=ROOT, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the other end closed: the build is over
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    pieces = re.split(r"[\r\n]+", text)
    bars = {p.split()[0]: p for p in pieces if "━" in p and p.split()}
    assert set(bars) == {"candidates", "questions", "dialogues", "verdicts", "sft"}, bars
    assert "100%" in bars["dialogues"] and " rows " in bars["dialogues"], bars["dialogues"]
    logs = [p for p in pieces if "| INFO" in p]
    assert logs and not [p for p in logs if "━" in p]
