import json

import pytest
from conftest import ROOT

from raspberry.benchmark_files import read_benchmark
from raspberry.errors import BenchmarkFileError

SAMPLE = ROOT / "configs" / "simplebench_sample.json"


def _error(path) -> str:
    with pytest.raises(BenchmarkFileError) as info:
        read_benchmark(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_simplebench_format():
    items = read_benchmark(SAMPLE)
    assert len(items) == 12
    assert items[0].id == "1" and items[0].verification == {
        "kind": "mcq",
        "reference": items[0].answer,
    }
    assert all(i.answer in "ABCDEF" for i in items)


def test_malformed_json_names_line(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"eval_data": [\n{"question_id": 1,, }]}')
    assert "line 2" in _error(path)


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({"question_id": 7, "prompt": "Q?"}, ["question_id 7", "A-F"]),
        ({"question_id": 8, "prompt": "Q?", "answer": "G"}, ["question_id 8", "'G'"]),
        ({"question_id": 9, "answer": "A"}, ["question_id 9", "no prompt"]),
    ],
)
def test_simplebench_bad_question(tmp_path, row, words):
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps({"eval_data": [{"question_id": 1, "prompt": "ok", "answer": "A"}, row]})
    )
    message = _error(path)
    assert all(w in message for w in words)


def test_jsonl_format_and_errors(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"id": "a", "question": "Capital of France?", "answer": "Paris"}\n'
        '{"question": "2+2?", "answer": 4, "verifier": "numeric"}\n\n'
        '{"question": "Pick", "answer": "b", "verifier": "mcq"}\n'
    )
    items = read_benchmark(path)
    assert [i.id for i in items] == ["a", "2", "4"]
    assert items[1].verification == {"kind": "numeric", "reference": "4"}
    path.write_text('{"question": "ok", "answer": "1"}\n{"question": "no answer"}\n')
    assert _error(path).startswith(f"{path}:2: question has no 'answer'")
    path.write_text('{"question": "ok", "answer": "1", "verifier": "vibes"}\n')
    assert "'vibes'" in _error(path)
    path.write_text('{"question": "ok", "answer": "1"}\nnot json\n')
    assert f"{path}:2: not valid JSON" in _error(path)


def test_missing_file_and_duplicates(tmp_path):
    assert "not found" in _error(tmp_path / "none.json")
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"id": 1, "question": "a", "answer": "1"}\n{"id": 1, "question": "b", "answer": "2"}\n'
    )
    assert "appears twice" in _error(path)
