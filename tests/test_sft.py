import asyncio

from conftest import rg_questions
from test_dialogue import run_dialogues_now

from raspberry.build_files.records import Dialogue, Lineage, Turn
from raspberry.llm import Gateway
from raspberry.stages import registry
from raspberry.stages.sft.checks import check_rewrite
from raspberry.stages.sft.rewrite import run_sft

QUESTION = rg_questions("chain_sum", 1, seed=21)[0]
RIGHT = QUESTION.reference_answer
WRONG = str(int(RIGHT) + 1)
ATTEMPT_1 = (
    "Step 1: I add the terms one by one carefully.\nStep 2: I get a total.\nFinal answer: " + WRONG
)
ATTEMPT_2 = "Let me redo the sum term by term and check each addition.\nFinal answer: " + RIGHT
NUDGE = "Close, but not quite: add the terms again one by one from the very start."


def _dialogue() -> Dialogue:
    turns = [
        Turn(role="user", content=QUESTION.prompt, tokens=0),
        Turn(role="assistant", content=ATTEMPT_1, tokens=10),
        Turn(role="user", content=NUDGE, tokens=5),
        Turn(role="assistant", content=ATTEMPT_2, tokens=10),
    ]
    return Dialogue(
        id="d1",
        question_id=QUESTION.id,
        sample_index=0,
        turns=turns,
        attempts=2,
        solved=True,
        solved_at_turn=2,
        stop_reason="solved",
        final_answer=RIGHT,
        nudges_rejected=0,
        tokens_in=0,
        tokens_out=0,
        cost_usd=0.0,
        lineage=Lineage(question_id=QUESTION.id, stage="dialogues", config_hash="h"),
    )


GOOD = (
    ATTEMPT_1.replace(f"Final answer: {WRONG}", f"So my answer would be {WRONG}.")
    + "\nWait, that does not look right. Let me check it again.\n"
    + ATTEMPT_2
)


def test_good_monologue_passes_every_check():
    assert check_rewrite(GOOD, _dialogue(), QUESTION.verification, 0.85) == []


def test_each_check_names_its_failure():
    d, spec = _dialogue(), QUESTION.verification
    assert check_rewrite(GOOD[:60] + f"\nWait.\nFinal answer: {RIGHT}", d, spec, 0.85)[
        0
    ].startswith("length retention")
    assert any(
        "talks of the user" in f
        for f in check_rewrite(GOOD + "\nAs the user said, recheck.", d, spec, 0.85)
    )
    assert any("copies a nudge" in f for f in check_rewrite(GOOD + "\n" + NUDGE, d, spec, 0.85))
    no_correction = GOOD.replace("Wait, that does not look right. Let me check it again.", "Then.")
    assert any("mistakes dropped" in f for f in check_rewrite(no_correction, d, spec, 0.5))
    wrong_end = GOOD.replace(f"Final answer: {RIGHT}", f"Final answer: {WRONG}")
    assert any(f.startswith("final answer") for f in check_rewrite(wrong_end, d, spec, 0.85))


def _sft(config, sim_url, dialogues, questions):
    prompt = registry.stage("sft").load_prompts(config)["rewriter_prompt"]

    async def go():
        async with Gateway(config.llm, sim_url) as gw:
            rows, drops = await run_sft(
                gw, dialogues, {q.id: q for q in questions}, config.sft, prompt, "h"
            )
            return rows, drops, gw.stats

    return asyncio.run(go())


def test_simulated_rewrites_keep_the_reasoning(make_config, sim_url):
    config = make_config()
    questions = rg_questions("word_sorting", 25)
    dialogues = [d for d in run_dialogues_now(config, sim_url, questions) if d.solved]
    rows, drops, stats = _sft(config, sim_url, dialogues, questions)
    assert len(rows) == len(dialogues) and drops == {}
    multi = [r for r in rows if r.rewritten]
    assert multi and all(r.retention >= 0.85 for r in multi)
    # Only multi-turn dialogues are sent to the rewriter.
    assert stats.requests_sent + stats.cache_hits == len(multi)
    assert all(not r.rewritten and r.retention is None for r in rows if r not in multi)


def test_truncating_rewriter_is_retried_then_rejected(make_config, sim_url):
    models = make_config().model_dump()["models"]
    models["rewriter"]["model"] = "sim-rewriter-truncating"
    config = make_config(models=models, sft={"max_rewrite_attempts": 2})
    questions = rg_questions("letter_counting", 25)
    dialogues = [
        d for d in run_dialogues_now(config, sim_url, questions) if d.solved and d.attempts > 1
    ]
    assert dialogues
    rows, drops, stats = _sft(config, sim_url, dialogues, questions)
    assert rows == []
    assert drops == {"length retention": len(dialogues)}
    assert stats.requests_sent + stats.cache_hits == 2 * len(dialogues)
