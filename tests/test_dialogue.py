import asyncio

import pytest
from conftest import rg_questions as _questions

from raspberry.llm import Gateway
from raspberry.stages.dialogues.loop import leaks_answer, run_dialogues
from raspberry.stages.dialogues.stage import dialogue_prompts


def run_dialogues_now(config, sim_url, questions):
    prompts = dialogue_prompts(config)

    async def go():
        async with Gateway(config.llm, sim_url) as gw:
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
    refs = [[p.split("#")[0] for p in d.lineage.prompts] for d in dialogues]
    assert all(r == ["teacher_system@1", "user_standin@1"] for r in refs)
    assert all(len(p.split("#")[1]) == 12 for d in dialogues for p in d.lineage.prompts)


def test_each_call_asks_for_a_slot_with_the_calls_its_dialogue_made(make_config, sim_url):
    # The gateway sends lower numbers first when slots are short: dialogues furthest behind go
    # first. Per dialogue: teacher 0, nudge 1, teacher 2, ... (the critic ranks with the nudge).
    config = make_config()
    prompts, asked = dialogue_prompts(config), []

    async def go():
        async with Gateway(config.llm, sim_url) as gw:
            chat = gw.chat

            async def recording(role, messages, **kw):
                asked.append((messages[0]["content"], role, kw["priority"]))
                return await chat(role, messages, **kw)

            gw.chat = recording
            return await run_dialogues(
                gw, _questions("letter_counting", 30), config.dialogues, prompts, "h"
            )

    dialogues = asyncio.run(go())
    long = next(d for d in dialogues if d.attempts >= 2)
    question = long.turns[0].content
    teacher = [p for q, role, p in asked if q == question and role == "teacher"]
    nudges = [p for q, role, p in asked if question in q and role == "user_standin"]
    assert teacher == list(range(0, 2 * long.attempts, 2))
    assert nudges[: long.attempts - 1] == list(range(1, 2 * long.attempts - 1, 2))


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


def test_leaky_standin_tries_verbatim_and_reformatted_leaks(sim_url):
    import openai

    client = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="any", max_retries=0)
    prompt = "<problem>\nSolve for x: 2*x = 84\n</problem>\n<correct_answer>\n42\n</correct_answer>"
    texts = [
        client.chat.completions.create(
            model="sim-user-standin-leaky",
            seed=seed,
            messages=[{"role": "user", "content": prompt}],
        )
        .choices[0]
        .message.content
        for seed in (0, 1)
    ]
    assert "42.0" not in texts[0] and "42" in texts[0]
    assert "42.0" in texts[1]
    assert all(leaks_answer(t, "42") for t in texts)


def test_questions_without_a_verifier_use_the_llm_critic(make_config, sim_url):
    from conftest import run_stage

    config = make_config()
    questions = [
        q.model_copy(update={"verification": '{"kind": "judge"}'})
        for q in _questions("letter_counting", 20)
    ]
    dialogues = run_dialogues_now(config, sim_url, questions)
    assert all(d.solved for d in dialogues)  # the critic compared each answer with the reference
    assert any(d.solved_at_turn > 1 for d in dialogues)
    verdicts, stats = run_stage("verdicts", config, sim_url, questions, dialogues)
    assert all(v.accepted and v.programmatic_pass is None and v.judge_score >= 7 for v in verdicts)


def test_500_questions_x2_histogram_matches_the_simulated_rates(make_config, sim_url):
    """The session simulator: first attempt wrong 40%, a later one 20%, max 4 turns."""
    from raspberry.stages.dialogues.stage import dialogue_report

    config = make_config(dialogues={"samples_per_question": 2, "max_turns": 4})
    questions = [
        q
        for task in ("chain_sum", "letter_counting", "word_sorting", "simple_equations")
        for q in _questions(task, 125, seed=31)
    ]
    dialogues = run_dialogues_now(config, sim_url, questions)
    assert len(dialogues) == 1000
    assert all(d.stop_reason in {"solved", "turn_limit"} for d in dialogues)
    report = dialogue_report(dialogues)
    expected = {"1": 0.6, "2": 0.4 * 0.8, "3": 0.4 * 0.2 * 0.8, "4": 0.4 * 0.2 * 0.2 * 0.8}
    for turn, p in expected.items():
        observed = report["solved_at_turn"].get(turn, 0) / 1000
        se = (p * (1 - p) / 1000) ** 0.5
        assert abs(observed - p) < 4 * se + 0.002, (turn, observed, p)
    # Samples of one question are independent draws, not copies.
    by_question = {}
    for d in dialogues:
        by_question.setdefault(d.question_id, []).append(d.solved_at_turn)
    assert sum(a != b for a, b in by_question.values()) > 100
