import asyncio

import pytest
from conftest import rg_questions as _questions

from raspberry.dialogue import DialoguePrompts, leaks_answer, run_dialogues
from raspberry.llm import Gateway
from raspberry.stages import stage_prompts


def run_dialogues_now(config, sim_url, questions):
    p = stage_prompts(config, "dialogues")
    prompts = DialoguePrompts(p["teacher_prompt"], p["user_standin_prompt"])

    async def go():
        async with Gateway(config, sim_url) as gw:
            return await run_dialogues(gw, questions, config.dialogues, prompts, "h")

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("nudge", "reference", "leaks"),
    [
        ("The answer is 42.", "42", True),
        ("Close: it should be 42.0", "42", True),
        ("Check step 142 again", "42", False),
        ("Try: apple, Banana, cherry", "apple, Banana, cherry", True),
        ("try APPLE BANANA CHERRY", "apple, banana, cherry", True),
        ("Close, but check the order of the words", "apple, banana, cherry", False),
    ],
)
def test_leak_guard(nudge, reference, leaks):
    assert leaks_answer(nudge, reference) is leaks


def test_dialogues_loop_until_solved_with_nudges(make_config, sim_url):
    config = make_config()
    dialogues = run_dialogues_now(config, sim_url, _questions("letter_counting", 30))
    assert len(dialogues) == 30
    assert all(d.stop_reason in {"solved", "turn_limit"} for d in dialogues)
    corrected = [d for d in dialogues if d.solved and d.solved_at_turn > 1]
    assert corrected, "with 40% wrong first attempts some dialogues need a nudge"
    for d in corrected:
        roles = [t.role for t in d.turns]
        assert roles[:3] == ["user", "assistant", "user"] and roles[-1] == "assistant"
        assert d.attempts == d.solved_at_turn
        assert "Close, but not quite" in d.turns[2].content
    assert all(d.lineage.prompts == ["teacher_system@1", "user_standin@1"] for d in dialogues)


def test_samples_are_distinct_and_ordered(make_config, sim_url):
    config = make_config(dialogues={"samples_per_question": 3, "max_turns": 3})
    dialogues = run_dialogues_now(config, sim_url, _questions("chain_sum", 4))
    assert [d.sample_index for d in dialogues] == [0, 1, 2] * 4
    assert len({d.id for d in dialogues}) == 12


def test_leaky_standin_never_reaches_a_dialogue(make_config, sim_url):
    models = make_config().model_dump()["models"]
    models["user_standin"]["model"] = "sim-user-standin-leaky"
    config = make_config(models=models)
    questions = _questions("simple_equations", 20)
    dialogues = run_dialogues_now(config, sim_url, questions)
    refs = {q.id: q.reference_answer for q in questions}
    nudges = [
        (t.content, refs[d.question_id]) for d in dialogues for t in d.turns[1:] if t.role == "user"
    ]
    assert len(nudges) >= 3, "with 40% wrong first attempts some dialogues have nudges"
    assert all(ref not in text for text, ref in nudges)
    assert all(d.nudges_rejected >= 1 for d in dialogues if len(d.turns) > 2)
