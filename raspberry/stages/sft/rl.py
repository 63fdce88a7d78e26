"""The `rl` export: every question the build verified, with the check that scores an answer to
it, for RL trainers (TRL's GRPO, verl, OpenRLHF) and raspberry.verify.reward.

A row per question with an accepted verdict and a programmatic verifier (a judged question has
no check to reward with): `prompt` (conversational), `reference`, `verification` (the spec as
JSON text, what the reward reads), `source`, `task` and `question_id`.
"""

from __future__ import annotations

import json
from typing import Any

from raspberry.build_files.records import Question, Verdict


def rl_rows(questions: list[Question], verdicts: list[Verdict]) -> list[dict[str, Any]]:
    accepted = {v.question_id for v in verdicts if v.accepted}
    rows, seen = [], set()
    for q in questions:
        if q.id in accepted and q.id not in seen and json.loads(q.verification)["kind"] != "judge":
            seen.add(q.id)
            rows.append({
                "prompt": [{"role": "user", "content": q.prompt}],
                "reference": q.reference_answer,
                "verification": q.verification,
                "source": q.source,
                "task": q.task,
                "question_id": q.id,
            })  # fmt: skip
    return rows
