import pytest

from raspberry.verify import check
from raspberry.verify.mcq import extract_choice


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("reasoning...\nFinal Answer: C", "C"),
        ("reasoning...\nfinal answer: c", "C"),
        ("reasoning...\nFinal answer: (C)", "C"),
        ("reasoning...\nfinal answer: (c)", "C"),
        ("reasoning...\n**Final Answer: C**", "C"),
        ("reasoning...\nFinal Answer: **C**", "C"),
        ("reasoning...\nFinal answer: C) Paris", "C"),
        ("reasoning...\nFinal answer: (C) A dog on a sled", "C"),
        ("reasoning...\nFinal Answer is: D.", "D"),
        ("Final answer: A\nthinking more\nFinal answer: B", "B"),
        ("I choose this one:\n**E**", "E"),
        ("I choose this one:\n(f)", "F"),
        ("reasoning...\nFinal Answer: $\\boxed{B}$", "B"),
        # two letters, or none, is no answer
        ("reasoning...\nFinal Answer: C and D", None),
        ("reasoning...\nFinal answer: C, D", None),
        ("reasoning...\nFinal answer: C/D", None),
        ("reasoning...\nFinal answer: either (B) or (E)", None),
        ("reasoning...\nFinal answer: G", None),
        ("I cannot decide.", None),
        ("", None),
    ],
)
def test_extract_choice(text, letter):
    assert extract_choice(text) == letter


def test_mcq_verifier():
    spec = {"kind": "mcq", "reference": "c"}
    assert check(spec, "work\nFinal answer: (C)").passed
    result = check(spec, "work\nFinal answer: B")
    assert not result.passed and result.reason == "chose B, expected C"
    assert check(spec, "Final answer: B or C").reason == "no single option letter found"


def test_exact_and_numeric_verifiers():
    assert check({"kind": "exact", "reference": "Paris"}, "hmm\nFinal answer: paris.").passed
    assert not check({"kind": "exact", "reference": "Paris"}, "hmm\nFinal answer: Lyon").passed
    assert check(
        {"kind": "numeric", "reference": "3.14", "tolerance": 0.01}, "Final answer: 3.141"
    ).passed
    assert check({"kind": "numeric", "reference": "1000"}, "Final answer: 1,000").passed
    assert not check({"kind": "numeric", "reference": "2"}, "Final answer: 2.1").passed
    assert not check({"kind": "numeric", "reference": "2"}, "Final answer: two").passed
    assert check({"kind": "numeric"}, "Final answer: 2").reason.startswith("bad numeric spec")


@pytest.mark.parametrize(
    ("answer", "spec", "passed"),
    [
        ("Final answer: 3, 1 and 2", {"reference": "3, 1, 2"}, True),
        ("Final answer: [3; 1; 2].", {"reference": ["3", "1", "2"]}, True),
        ("Final answer: 3, 1, and 2", {"reference": "3 and 1 and 2"}, True),  # Oxford comma
        ("Final answer: Red, GREEN & blue", {"reference": "red, green, blue"}, True),
        (
            "Final answer: Red, GREEN & blue",
            {"reference": "red, green, blue", "case_sensitive": True},
            False,
        ),  # fmt: skip
        ("Final answer: 1, 2, 3", {"reference": "3, 1, 2"}, False),  # order matters by default
        ("Final answer: 1, 2, 3", {"reference": "3, 1, 2", "ordered": False}, True),
        ("Final answer: 1, 2, 2", {"reference": "1, 2", "ordered": False}, False),  # a multiset
        ("Final answer: 1, 2", {"reference": "1, 2, 3", "ordered": False}, False),
        ("I am not sure.\nMaybe.", {"reference": "1"}, False),
    ],
)
def test_list_verifier(answer, spec, passed):
    result = check({"kind": "list", **spec}, answer)
    assert result.passed is passed, result.reason


def test_list_answers_from_files_and_writers_get_a_list_spec():
    from raspberry.stages.candidates.answers import spec_for, spec_problem

    spec = spec_for("unordered_list", " paris, rome and oslo ")
    assert spec == {"kind": "list", "reference": "paris, rome and oslo", "ordered": False}
    assert spec_problem(spec, "paris, rome and oslo") is None
    assert check(spec, "Final answer: Oslo; Paris; Rome").passed
    assert not check(spec_for("list", "a, b"), "Final answer: b, a").passed
