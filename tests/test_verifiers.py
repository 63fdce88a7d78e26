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
