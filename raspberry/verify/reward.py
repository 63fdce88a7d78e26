"""The checks as a reward for reinforcement learning: one float per completion, never raising.

- `reward(prompts, completions, verification, **kwargs)`: the signature TRL's GRPOTrainer calls
  (its dataset's other columns arrive as keyword lists: the `rl` export's `verification`
  column is what this reads). Completions may be text or conversational (a list of messages:
  the last one's content is scored).
- `compute_score(data_source, solution_str, ground_truth, extra_info=None)`: verl's custom
  reward function, with the verification spec as the ground truth.
- `raspberry reward serve`: the same over HTTP, for trainers that call a remote reward
  (OpenRLHF's `--remote_rm_url`); see `serve`.

Full credit (1.0) is a pass of the question's verifier; a reasoning-gym task's own partial
score counts where the task gives one (an answer close to right); anything else, including a
malformed spec or an answer the verifier could not read, is 0.0. The answer's code runs in the
sandbox like any code check, so a reward cannot be gamed more than the checks can
(tests/reward_hacking.py is run against it).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from raspberry.verify.checks import check, final_answer, rg_scorer

log = logging.getLogger(__name__)


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: the model's last message
        return str(completion[-1].get("content", "")) if completion else ""
    return "" if completion is None else str(completion)


def score(spec: dict[str, Any] | str, text: str) -> float:
    """The reward of one answer: 1.0 for a pass, a reasoning-gym task's partial score, else 0."""
    try:
        parsed = json.loads(spec) if isinstance(spec, str) else spec
        if check(parsed, text).passed:
            return 1.0
        if parsed.get("kind") == "reasoning_gym" and (answer := final_answer(text)) is not None:
            partial = float(rg_scorer(parsed["task"])(answer, parsed["entry"]))
            return min(max(partial, 0.0), 0.99)  # only a pass is full credit
    except Exception:  # a reward never raises: a broken spec or scorer is worth nothing
        log.warning("reward: scoring failed; 0.0 given", exc_info=True)
    return 0.0


def reward(
    prompts: list[Any], completions: list[Any], verification: list[str] | None = None, **_: Any
) -> list[float]:
    """TRL's reward-function signature: one float per completion, in order."""
    if verification is None or len(verification) != len(completions):
        log.warning("reward: no verification column for these completions; 0.0 each")
        return [0.0] * len(completions)
    return [score(spec, _text(c)) for spec, c in zip(verification, completions, strict=True)]


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None
) -> float:
    """verl's custom reward function: `ground_truth` is the row's verification spec."""
    return score(ground_truth, solution_str)
