"""The RL reward (raspberry.verify.reward) as trainers call it, and over HTTP
(`raspberry reward serve`): one float per completion, partial credit where reasoning-gym gives
it, never an exception."""

import json
import subprocess

import httpx
import pytest
from conftest import CLI, ROOT, rg_questions

from raspberry.verify.reward import reward, score


def test_one_float_per_completion_never_raising():
    q = rg_questions("basic_arithmetic", 1)[0]
    right = f"Working.\nFinal answer: {q.reference_answer}"
    specs = [q.verification, q.verification, "{not json", json.dumps({"kind": "nope"}), "{}"]
    texts = [right, [{"role": "assistant", "content": "Final answer: -99999"}], right, right, right]
    assert reward(["p"] * 5, texts, verification=specs, trainer_state=None) == [
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    assert reward(["p"], [right]) == [0.0]  # no verification column: nothing to check against
    assert reward([], [], verification=[]) == []


def test_partial_credit_where_reasoning_gym_gives_it():
    q = rg_questions("basic_arithmetic", 1)[0]
    close = score(q.verification, f"Final answer: {q.reference_answer}1")  # one digit too many
    assert score(q.verification, f"Final answer: {q.reference_answer}") == 1.0
    assert 0.0 < close < 1.0  # reasoning-gym scores a near miss above nothing, below a pass


@pytest.fixture
def server():
    proc = subprocess.Popen([*CLI, "reward", "serve", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    url = proc.stdout.readline().split()[-1]
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_the_reward_over_http(server):
    spec = {"kind": "math", "reference": "\\frac{1}{2}"}
    got = httpx.post(f"{server}/reward", json={
        "completions": ["Final answer: 0.5", "Final answer: 2"], "verification": [spec, spec]},
        timeout=60).json()  # fmt: skip
    assert got == {"rewards": [1.0, 0.0]}
    got = httpx.post(f"{server}/get_reward", json={"query": ["x = 0.5\nFinal answer: 0.5"],
                     "labels": [json.dumps(spec)]}, timeout=60).json()  # fmt: skip
    assert got == {"rewards": [1.0]}  # OpenRLHF's field names, a spec as text
    bad = httpx.post(f"{server}/reward", json={"completions": ["a"], "verification": []})
    assert bad.status_code == 400 and "of one length" in bad.json()["error"]
