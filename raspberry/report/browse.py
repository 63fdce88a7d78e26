"""A build's rows joined into items, one per question and sample, for `raspberry show` and the
HTML browser: where each got to, why it stopped there, what it cost, the dialogue beside the
monologue it became.

Items are read from the done shards of every stage, by row type: the latest question row of a
question (the questions stage's, else the candidates'), its dialogues, their verdicts and SFT
rows. Filters are `field=value` expressions (see FIELDS and `matches`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from raspberry.build_files.manifest import Manifest
from raspberry.build_files.records import Dialogue, Question, SftRow, Verdict
from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError
from raspberry.stages import registry


@dataclass
class Item:
    id: str  # the dialogue's id; the question's for one that never reached the dialogues
    question_id: str
    source: str
    task: str
    prompt: str
    reference: str
    stage: str  # the last stage with a row of it
    outcome: str  # exported, not exported, rejected, dropped, waiting
    reason: str  # why it stopped where it did ("" when exported)
    turns: int | None = None  # the attempt that solved it, else attempts made
    stop: str = ""  # the dialogue's stop reason
    cost: float = 0.0  # what its dialogue paid
    rewritten: bool | None = None
    checks: list[str] = field(default_factory=list)
    dialogue: list[tuple[str, str]] = field(default_factory=list)
    monologue: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# What `--where` can filter on, and how each field compares.
FIELDS = ("id", "source", "task", "stage", "outcome", "reason", "turns", "stop", "cost",
          "rewritten", "prompt")  # fmt: skip
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, "=": operator.eq,
    ">": operator.gt, "<": operator.lt,
}  # fmt: skip
_FILTER = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|=|>|<|~)\s*(.*?)\s*$")


def rows_by_type(
    store: BuildStore, manifest: Manifest, only: type | None = None
) -> dict[type, list[tuple[str, Any]]]:
    """Every row of every done shard (of the stages whose row type is `only`, when given), by
    row type, with the stage it came from, in stage order."""
    found: dict[type, list[tuple[str, Any]]] = {}
    for spec in registry.stages():
        if only is not None and spec.row_type is not only:
            continue
        for name, entry in sorted(manifest["stages"].get(spec.name, {}).items()):
            if entry["state"] == "done":
                rows = store.read_shard(spec.name, int(name.split("-")[1]), spec.row_type)
                found.setdefault(spec.row_type, []).extend((spec.name, r) for r in rows)
    return found


def items(store: BuildStore, manifest: Manifest) -> list[Item]:
    """One item per question and dialogue sample, in the order the questions were made."""
    rows = rows_by_type(store, manifest)
    questions: dict[str, tuple[str, Question]] = {}
    for stage, q in rows.get(Question, []):
        questions[q.id] = (stage, q)  # a later stage's row of the same question wins
    dialogues: dict[str, list[tuple[str, Dialogue]]] = {}
    for stage, d in rows.get(Dialogue, []):
        dialogues.setdefault(d.question_id, []).append((stage, d))
    verdicts = {v.dialogue_id: (stage, v) for stage, v in rows.get(Verdict, [])}
    exported = {s.dialogue_id: (stage, s) for stage, s in rows.get(SftRow, [])}
    out = []
    for qid, (stage, q) in questions.items():
        base = {"question_id": qid, "source": q.source, "task": q.task, "prompt": q.prompt,
                "reference": q.reference_answer}  # fmt: skip
        if q.drop_reason or qid not in dialogues:
            outcome = "dropped" if q.drop_reason else "waiting"
            reason = f"{q.drop_reason}: {q.drop_detail}" if q.drop_detail else q.drop_reason
            out.append(Item(id=qid, stage=stage, outcome=outcome, reason=reason, **base))
            continue
        for dstage, d in dialogues[qid]:
            out.append(_sampled(base, dstage, d, verdicts.get(d.id), exported.get(d.id)))
    return out


def _sampled(
    base: dict[str, Any],
    stage: str,
    d: Dialogue,
    verdict: tuple[str, Verdict] | None,
    sft: tuple[str, SftRow] | None,
) -> Item:
    item = Item(
        id=d.id, stage=stage, outcome="waiting", reason="", turns=d.solved_at_turn or d.attempts,
        stop=d.stop_reason, cost=round(d.cost_usd, 6),
        dialogue=[(t.role, t.content) for t in d.turns], **base,
    )  # fmt: skip
    if verdict is None:
        return item
    item.stage, v = verdict
    item.checks = [
        f"programmatic: {'pass' if v.programmatic_pass else 'fail'} ({v.programmatic_reason})"
        if v.programmatic_pass is not None
        else "programmatic: none for this question"
    ]
    for judge, score in (("judge", v.judge_score), ("second judge", v.second_judge_score)):
        if score is not None:
            item.checks.append(f"{judge}: {score:g}/10")
    if not v.accepted:
        item.outcome, item.reason = "rejected", "; ".join(v.reject_reasons)
        return item
    if sft is None:
        item.outcome, item.reason = "not exported", "accepted, but the SFT stage dropped it"
        return item
    item.stage, row = sft
    item.outcome, item.rewritten, item.monologue = "exported", row.rewritten, row.response
    return item


def parse_filter(text: str) -> Callable[[Item], bool]:
    """`field=value` (also !=; >, >=, <, <= for turns and cost; ~ for 'contains') as a test."""
    match = _FILTER.match(text)
    if not match or match.group(1) not in FIELDS:
        raise RaspberryError(
            f"--where {text!r}: use FIELD OP VALUE with FIELD one of {', '.join(FIELDS)} and OP "
            "one of = != > >= < <= ~ (contains), e.g. --where turns>=2 --where source=synthesis"
        )
    name, op, raw = match.groups()
    if op == "~":
        return lambda item: raw.casefold() in str(getattr(item, name) or "").casefold()
    if name in ("turns", "cost"):
        try:
            number = float(raw)
        except ValueError:
            raise RaspberryError(f"--where {text!r}: {name} is a number, not {raw!r}") from None
        return lambda item: (
            getattr(item, name) is not None and _OPS[op](getattr(item, name), number)
        )
    if op not in ("=", "!="):
        raise RaspberryError(f"--where {text!r}: {name} takes =, != or ~, not {op}")
    want = raw.casefold()
    return lambda item: _OPS[op](str(getattr(item, name)).casefold(), want)


def select(found: list[Item], where: list[str]) -> list[Item]:
    tests = [parse_filter(w) for w in where]
    return [i for i in found if all(t(i) for t in tests)]


def find(found: list[Item], prefix: str) -> Item:
    """The item whose id (or question id) starts with `prefix`; one line when none or several."""
    hits = [i for i in found if i.id.startswith(prefix)] or [
        i for i in found if i.question_id.startswith(prefix)
    ]
    if len(hits) != 1:
        what = "no row" if not hits else f"{len(hits)} rows"
        raise RaspberryError(f"--id {prefix!r} matches {what}; give more of the id")
    return hits[0]
