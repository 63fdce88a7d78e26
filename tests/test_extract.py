import pytest

from raspberry.verify import check, extract_final_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("work\nFinal answer: 42", "42"),
        ("work\nfinal answer: 42.", "42"),
        ("work\n**Final answer:** 42", "42"),
        ("work\nFinal Answer: **a, b, c**", "a, b, c"),
        ("work\nFinal answer: $\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
        ("so the result is \\boxed{17}", "17"),
        ("Final answer: 1\nmore thinking\nFinal answer: 2", "2"),
        ("no answer line here", None),
        ("Final answer:   ", None),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_reasoning_gym_check_passes_only_at_full_score():
    import reasoning_gym

    entry = reasoning_gym.create_dataset("word_sorting", size=1, seed=4)[0]
    spec = {"kind": "reasoning_gym", "task": "word_sorting", "entry": entry}
    assert check(spec, f"steps\nFinal answer: {entry['answer']}").passed
    words = entry["answer"].split(", ")
    swapped = ", ".join([words[1], words[0], *words[2:]])
    result = check(spec, f"Final answer: {swapped}")
    assert not result.passed and "only 1.0 passes" in result.reason
    assert check(spec, "I give up\nno idea").reason == "no final answer found"
    assert "no verifier" in check({"kind": "astrology"}, "Final answer: 1").reason
