"""The verifier, and the RL reward made of it, against answers written to game them
(tests/reward_hacking.py): every attempt fails and earns nothing; every honest control passes
and earns the full reward."""

import json

import pytest
from reward_hacking import ATTEMPTS, CONTROLS

from raspberry.verify import check


def test_the_suite_is_as_large_as_promised():
    assert len(ATTEMPTS) >= 30 and len({c.name for c in ATTEMPTS}) == len(ATTEMPTS)


@pytest.mark.parametrize("case", ATTEMPTS, ids=lambda c: c.name)
def test_an_attempt_to_game_the_check_fails(case):
    result = check(case.spec, case.answer)
    assert not result.passed, result.reason


@pytest.mark.parametrize("case", CONTROLS, ids=lambda c: c.name)
def test_an_honest_answer_passes(case):
    result = check(case.spec, case.answer)
    assert result.passed, result.reason


@pytest.mark.parametrize("case", ATTEMPTS, ids=lambda c: c.name)
def test_an_attempt_earns_no_reward(case):
    from raspberry.verify.reward import reward

    completion = [{"role": "assistant", "content": case.answer}]  # as GRPO passes a chat model's
    assert reward(["q"], [completion], verification=[json.dumps(case.spec)]) == [0.0]


@pytest.mark.parametrize("case", CONTROLS, ids=lambda c: c.name)
def test_an_honest_answer_earns_the_full_reward(case):
    from raspberry.verify.reward import compute_score, reward

    assert reward(["q"], [case.answer], verification=[json.dumps(case.spec)]) == [1.0]
    assert compute_score("files", case.answer, json.dumps(case.spec)) == 1.0
