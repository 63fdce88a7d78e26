"""Evol-Instruct-style deepening: a question is rewritten into a harder one by one operation.

Each round takes the eligible kept questions (the configured sources, then the previous round's
successful evolutions), picks a seeded share of them and a seeded operation for each, and asks
the question_writer for the new question and its answer. A failed evolution is kept as a dropped
row with its reason: the reply was no valid question, a refusal, no real change, an addition that
holds no number, constraint, step or condition (evolution_trivial), or the prompt's own words
copied into the question. Every round is a step in the row's lineage.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from raspberry.build_files.records import Question
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.stages.candidates.answers import spec_json
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.text import question_id, words
from raspberry.stages.candidates.writer import WrittenQuestion, write

SOURCE = "evolution"
PLACEHOLDERS = {"operation", "operation_description", "question", "reference"}
OPERATIONS = {
    "add_constraints": "Add one or two constraints or requirements the answer must also meet.",
    "add_steps": "Require more steps of reasoning to reach the answer, e.g. one more stage of "
    "the computation or one more inference.",
    "make_concrete": "Replace general terms with specific, concrete ones (names, quantities, "
    "settings) so the problem becomes more particular.",
    "complicate_input": "Make the given data larger or more intricate: more items, larger "
    "numbers, data written out in the text.",
}
_REFUSAL = re.compile(
    r"\b(?:I can(?:no|')t|I am unable|I'm unable|I am sorry|I'm sorry|as an AI)\b", re.I
)
# Words of the evolution prompt that have no place in a question (a known Evol-Instruct failure).
_TEMPLATE = re.compile(
    r"#?\s*(?:the\s+)?(?:given|rewritten|evolved|new)\s+(?:prompt|question)\s*#?|"
    r"reference[_ ]answer|add_constraints|add_steps|make_concrete|complicate_input|<operation>",
    re.I,
)


# Words that make an addition a constraint, a step or a condition. An addition without any of
# them and without a number ("..., given everything described above?", "All of this happens on
# a grey Tuesday") leaves the problem as it was: the evolution is trivial.
_MARKERS = frozenset(
    "must only exactly least most without except unless if then after before each every per "
    "twice thrice times more fewer less remove add subtract multiply divide round nearest "
    "integer whole decimal fraction percent instead also both neither either not never cannot "
    "until while such first last next previous remaining total sum difference product".split()
)
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand million billion half third quarter double triple dozen".split()
)


def added_words(parent: str, evolved: str) -> list[str]:
    """The evolved question's words that its parent lacks (counted: a repeated word counts)."""
    return list((Counter(words(evolved)) - Counter(words(parent))).elements())


def adds_nothing(parent: str, evolved: str) -> bool:
    """Whether what the evolution added holds no number, constraint, step or condition."""
    added = added_words(parent, evolved)
    return not any(w.isdigit() or w in _MARKERS or w in _NUMBER_WORDS for w in added)


def failure(parent: Question, written: WrittenQuestion | str, reply: str) -> tuple[str, str]:
    """(reason, detail) when the evolution failed, or ("", "") when it is a new question."""
    if not isinstance(written, WrittenQuestion):
        if _REFUSAL.search(reply):
            return "evolution_refused", reply.strip()[:200]
        return "evolution_invalid", written
    if m := _TEMPLATE.search(written.question):
        return "evolution_copied_template", f"the question contains {m.group(0).strip()!r}"
    old, new = set(words(parent.prompt)), set(words(written.question))
    if len(new - old) <= 1 and len(old - new) <= 1:
        return "evolution_unchanged", f"{len(new - old)} word(s) added, {len(old - new)} removed"
    if adds_nothing(parent.prompt, written.question):
        added = " ".join(added_words(parent.prompt, written.question))
        return "evolution_trivial", f"adds only {added[:160]!r}: no number, constraint or step"
    return "", ""


async def _evolve(
    gw: Gateway, cfg: QuestionsConfig, prompt: Prompt, parent: Question, round_: int
) -> Question:
    evolution = cfg.evolution
    assert evolution is not None
    operation = random.Random(f"{cfg.seed}/{parent.id}/{round_}/op").choice(evolution.operations)
    content = prompt.render(
        operation=operation,
        operation_description=OPERATIONS[operation],
        question=parent.prompt,
        reference=parent.reference_answer,
    )
    written, reply, attempts = await write(gw, content, prompt.ref, 0, evolution.max_attempts)
    reason, detail = failure(parent, written, reply)
    ok = isinstance(written, WrittenQuestion)
    text = written.question.strip() if ok else ""
    # A failed evolution may repeat its parent's text: its id is its own all the same.
    qid = question_id(text) if not reason else question_id(f"{parent.id}/{operation}/{round_}")
    step = f"evolve round {round_}: {operation} of {parent.id} in {attempts} attempt(s)"
    return parent.model_copy(
        update={
            "id": qid,
            "root_id": parent.root_id or parent.id,
            "source": SOURCE,
            "prompt": text,
            "reference_answer": written.reference_answer.strip() if ok else "",
            "verification": spec_json(written.spec()) if ok else "{}",
            "drop_reason": reason,
            "drop_detail": detail,
            "lineage": parent.lineage.model_copy(
                update={
                    "question_id": qid,
                    "prompts": sorted({*parent.lineage.prompts, prompt.fingerprint}),
                    "models": sorted({*parent.lineage.models, gw.model_ref("question_writer")}),
                    "steps": [*parent.lineage.steps, step],
                }
            ),
        }
    )


async def evolve(
    gw: Gateway, cfg: QuestionsConfig, prompt: Prompt, questions: list[Question]
) -> list[Question]:
    """The evolved rows (successful and failed) of every round, to add to the shard."""
    evolution = cfg.evolution
    if evolution is None:
        return []
    out: list[Question] = []
    parents = [q for q in questions if q.kept and q.source in evolution.sources]
    for round_ in range(1, evolution.rounds + 1):
        chosen = [
            q
            for q in parents
            if random.Random(f"{cfg.seed}/{q.id}/{round_}").random() < evolution.share
        ]
        made = await gather_rows(
            (f"evolution of {q.id} round {round_}", _evolve(gw, cfg, prompt, q, round_))
            for q in chosen
        )
        out.extend(made)
        parents = [q for q in made if q.kept]
    return out
