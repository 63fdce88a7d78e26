"""Preference pairs (TRL's prompt / chosen / rejected) from what a build verified.

- correction: a dialogue solved after a wrong attempt gives that attempt as rejected against
  its accepted answer (the monologue exported for it, or its final attempt);
- across_samples: with several samples of a question, an accepted sample against one that was
  not accepted.

Every pair is checked at export: the chosen side passes the question's verifier and the rejected
side fails it; a pair that does not, or whose question has no programmatic verifier, is left out
and counted with its reason. Each row says where it came from.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from raspberry.build_files.records import Dialogue, Question, SftRow, Verdict
from raspberry.stages.sft.config import PreferenceConfig
from raspberry.verify import check, has_verifier


def _attempts(dialogue: Dialogue) -> list[str]:
    return [t.content for t in dialogue.turns if t.role == "assistant"]


def _candidates(
    row: SftRow, dialogue: Dialogue, others: list[Dialogue], cfg: PreferenceConfig
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The chosen side for one exported row, and its (rejected side, provenance) candidates,
    before the verifier's check."""
    attempts = _attempts(dialogue)
    chosen = row.response if cfg.chosen == "monologue" else attempts[-1]
    found: list[tuple[str, dict[str, Any]]] = []
    if "correction" in cfg.kinds and (dialogue.solved_at_turn or 1) > 1:
        wrong = list(enumerate(attempts[: dialogue.solved_at_turn - 1], 1))  # type: ignore[operator]
        picked = {"first": wrong[:1], "last": wrong[-1:], "every": wrong}[cfg.rejected]
        for attempt, text in picked:
            provenance = {"kind": "correction", "rejected_from": dialogue.id,
                          "rejected_attempt": attempt}  # fmt: skip
            found.append((text, provenance))
    if "across_samples" in cfg.kinds:
        for other in others:
            if attempts_of := _attempts(other):
                provenance = {"kind": "across_samples", "rejected_from": other.id,
                              "rejected_attempt": len(attempts_of)}  # fmt: skip
                found.append((attempts_of[-1], provenance))
    return chosen, found


def preference_pairs(
    rows: list[SftRow],
    questions: list[Question],
    dialogues: list[Dialogue],
    verdicts: list[Verdict],
    cfg: PreferenceConfig,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pairs for the exported rows, and their report: pairs per kind, and the candidate pairs
    left out per reason."""
    by_question = {q.id: q for q in questions}
    by_id = {d.id: d for d in dialogues}
    accepted = {v.dialogue_id for v in verdicts if v.accepted}
    not_accepted: dict[str, list[Dialogue]] = {}
    for d in dialogues:
        if d.id not in accepted:
            not_accepted.setdefault(d.question_id, []).append(d)
    pairs: list[dict[str, Any]] = []
    left_out: Counter[str] = Counter()
    for row in rows:
        question, dialogue = by_question.get(row.question_id), by_id.get(row.dialogue_id)
        if question is None or dialogue is None:
            continue
        chosen, found = _candidates(row, dialogue, not_accepted.get(row.question_id, []), cfg)
        if found and not has_verifier(question.verification):
            left_out["no programmatic verifier"] += len(found)
            continue
        chosen_passes: bool | None = None  # checked once per row, when first needed
        for rejected, provenance in found:
            if not rejected.strip():
                left_out["empty rejected side"] += 1
                continue
            if chosen_passes is None:
                chosen_passes = check(question.verification, chosen).passed
            if not chosen_passes:
                left_out["chosen side fails its verifier"] += 1
            elif check(question.verification, rejected).passed:
                left_out["rejected side passes its verifier"] += 1
            else:
                pairs.append(
                    {
                        "prompt": question.prompt,
                        "chosen": chosen,
                        "rejected": rejected,
                        "question_id": question.id,
                        "source": question.source,
                        "chosen_from": dialogue.id,
                        **provenance,
                    }  # fmt: skip
                )
    report = {
        "pairs": len(pairs),
        "by_kind": dict(Counter(p["kind"] for p in pairs)),
        "left_out": dict(left_out),
    }
    return pairs, report
