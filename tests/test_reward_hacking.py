"""The verifier against answers written to game it (tests/reward_hacking.py): every attempt
fails and every honest control passes."""

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
