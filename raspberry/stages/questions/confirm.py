"""Paid checks on questions that survived the duplicate pass.

- confirm: a reference answer that no scorer vouches for (written, evolved, or from a file marked
  `confirm`) is kept only when enough independent teacher solutions pass the question's check.
- difficulty: the student role tries each question n times; its pass rate must fall in the band
  (and, with drop_unsolvable, a question it never solves goes when the teacher never does).

Both ask with the dialogue's teacher prompt, at sample indices of their own (CONFIRM_SAMPLE and
DIFFICULTY_SAMPLE onward), so they never share a cached request with a dialogue: a dialogue's
first attempt stays independent of the solutions that confirmed its question.
"""

from __future__ import annotations

from raspberry.build_files.records import Question
from raspberry.llm import STOP, Gateway
from raspberry.llm.progress import gather_all
from raspberry.prompts import Prompt
from raspberry.stages.candidates.config import ConfirmConfig, DifficultyConfig
from raspberry.verify import acheck

CONFIRM_SAMPLE = 10_000
DIFFICULTY_SAMPLE = 20_000
UNSOLVABLE_SAMPLE = 30_000


async def _passes(
    gw: Gateway, role: str, question: Question, teacher: Prompt, samples: range
) -> int:
    async def one(sample: int) -> bool:
        reply = await gw.chat(
            role,
            [{"role": "user", "content": question.prompt}],
            system=teacher.text,
            prompt_ref=teacher.ref,
            sample_index=sample,
        )
        return (
            reply.stop_reason == STOP and (await acheck(question.verification, reply.text)).passed
        )

    return sum(await gather_all(one(s) for s in samples))


def _with_step(question: Question, step: str, model: str, **changes: object) -> Question:
    lineage = question.lineage.model_copy(
        update={
            "steps": [*question.lineage.steps, step],
            "models": sorted({*question.lineage.models, model}),
        }
    )
    return question.model_copy(update={"lineage": lineage, **changes})


async def confirm(gw: Gateway, question: Question, teacher: Prompt, cfg: ConfirmConfig) -> Question:
    k = cfg.solutions
    agree = await _passes(
        gw, "teacher", question, teacher, range(CONFIRM_SAMPLE, CONFIRM_SAMPLE + k)
    )
    needed = k if cfg.rule == "all" else k // 2 + 1
    step = f"confirm: {agree}/{k} teacher solutions pass"
    changes = (
        {}
        if agree >= needed
        else {
            "drop_reason": "reference_not_confirmed",
            "drop_detail": f"{agree} of {k} teacher solutions pass, rule {cfg.rule} needs {needed}",
        }
    )
    return _with_step(question, step, gw.model_ref("teacher"), **changes)


async def difficulty(
    gw: Gateway, question: Question, teacher: Prompt, cfg: DifficultyConfig
) -> Question:
    n = cfg.samples
    passed = await _passes(
        gw, "student", question, teacher, range(DIFFICULTY_SAMPLE, DIFFICULTY_SAMPLE + n)
    )
    rate = passed / n
    changes: dict[str, object] = {"pass_rate": rate}
    step = f"difficulty: student passed {passed}/{n}"
    if passed == 0 and cfg.drop_unsolvable:
        solved = await _passes(
            gw, "teacher", question, teacher, range(UNSOLVABLE_SAMPLE, UNSOLVABLE_SAMPLE + n)
        )
        step += f", teacher {solved}/{n}"
        if not solved:
            changes |= {
                "drop_reason": "unsolvable",
                "drop_detail": f"neither the student nor the teacher solved it in {n} tries",
            }
            return _with_step(question, step, gw.model_ref("student"), **changes)
    if rate < cfg.min_pass_rate:
        changes |= {
            "drop_reason": "too_hard",
            "drop_detail": f"pass rate {rate:.2f} < {cfg.min_pass_rate}",
        }
    elif rate > cfg.max_pass_rate:
        changes |= {
            "drop_reason": "too_easy",
            "drop_detail": f"pass rate {rate:.2f} > {cfg.max_pass_rate}",
        }
    return _with_step(question, step, gw.model_ref("student"), **changes)
