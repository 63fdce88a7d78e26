import json
import os

import pytest

from raspberry.build_files.folder import Folder
from raspberry.build_files.records import Dialogue, Lineage, Question, SftRow, Turn, Verdict
from raspberry.stages.sft.card import Made
from raspberry.stages.sft.config import ExportConfig
from raspberry.stages.sft.export import BuildRows, export_rows, mix, splits
from raspberry.stages.sft.formats import prompt_response, trl_prompt_completion
from raspberry.stages.sft.openai_checks import check_lines, count_tokens, format_errors


def _row(i: int, source: str = "s", rewritten: bool = False) -> SftRow:
    return SftRow(
        id=f"r{i}",
        question_id=f"q{i}",
        dialogue_id=f"d{i}",
        source=source,
        prompt=f"Question {i}?",
        response=f"Step one.\nWait, let me check.\nFinal answer: {i}",
        rewritten=rewritten,
        retention=1.0 if rewritten else None,
        lineage=Lineage(
            question_id=f"q{i}",
            stage="sft",
            config_hash="h",
            models=["p/rewriter"],
            prompts=["rewriter@1"],
        ),
    )


def test_reasoning_wrappers():
    row = _row(7)
    assert prompt_response(row, "none")["response"] == row.response
    think = trl_prompt_completion(row, "think")["completion"][0]["content"]
    assert think == "<think>\nStep one.\nWait, let me check.\n</think>\n\nFinal answer: 7"
    fields = prompt_response(row, "fields")
    assert (
        fields["reasoning"] == "Step one.\nWait, let me check."
        and fields["answer"] == "Final answer: 7"
    )
    assert "response" not in fields


@pytest.mark.parametrize(
    ("share", "first", "corrected"),
    [(None, 30, 10), (0.5, 10, 10), (0.1, 30, 3), (0.0, 30, 0), (1.0, 0, 10), (0.4, 15, 10)],
)
def test_mix_reaches_the_share(share, first, corrected):
    rows = [_row(i) for i in range(30)] + [_row(100 + i, rewritten=True) for i in range(10)]
    kept, counts = mix(rows, share)
    assert counts == {"first_try": first, "self_corrected": corrected}
    assert len(kept) == first + corrected
    assert mix(rows, share)[0] == kept  # deterministic


def test_split_is_stratified_by_source_and_deterministic():
    rows = [_row(i, "a") for i in range(40)] + [_row(100 + i, "b") for i in range(20)]
    split_of = splits(rows, 0.1)
    validation = [r for r in rows if split_of[r.id] == "validation"]
    assert sum(r.source == "a" for r in validation) == 4
    assert sum(r.source == "b" for r in validation) == 2
    assert splits(list(reversed(rows)), 0.1) == split_of


def test_cookbook_checks_catch_bad_examples(tmp_path):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert format_errors(good) == []
    assert format_errors({"messages": [{"role": "user", "content": "hi"}]}) == [
        "example_missing_assistant_message"
    ]
    assert "missing_content" in format_errors(
        {"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]}
    )
    assert "unrecognized_role" in format_errors(
        {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}]}
    )
    assert "message_unrecognized_key" in format_errors(
        {"messages": [{"role": "assistant", "content": "a", "mood": "x"}]}
    )
    assert format_errors([1]) == ["data_type"] and format_errors({}) == ["missing_messages_list"]
    short, longer = (
        count_tokens(good["messages"], "o200k_base"),
        count_tokens(
            [*good["messages"], {"role": "user", "content": "a much longer message " * 20}],
            "o200k_base",
        ),
    )
    assert 6 < short < longer
    text = json.dumps(good) + "\n" + json.dumps({"messages": []}) + "\nnot json\n"
    report = check_lines(text, "o200k_base", 1000)
    assert report["format_errors"] == {"missing_messages_list": 1, "invalid_json": 1}
    assert not report["ok"] and report["examples"] == 3


def _data(rows):
    return BuildRows(sft=rows, questions=[], dialogues=[], verdicts=[])


MADE = Made("b", "candidates 1 → SFT rows 1", True, 0, 0, dialogues={}, verdicts={}, sft={})


def test_rows_over_the_token_limit_are_dropped_everywhere(tmp_path):
    rows = [_row(i) for i in range(5)]
    rows[2] = rows[2].model_copy(update={"response": "word " * 400 + "\nFinal answer: 2"})
    result = export_rows(
        _data(rows), ExportConfig(max_tokens_per_example=200), Folder(tmp_path), MADE
    )
    assert result["report"]["dropped_over_token_limit"] == 1
    for fmt in ("prompt_response", "openai_chat", "sharegpt", "trl_prompt_completion"):
        assert len((tmp_path / f"{fmt}.jsonl").read_text().splitlines()) == 4
    assert result["report"]["openai_chat_checks"]["ok"]


def _dialogue(did: str, qid: str, attempts: list[str], solved_at: int | None) -> Dialogue:
    turns = [Turn(role="user", content="Q", tokens=0)]
    for k, text in enumerate(attempts):
        turns.append(Turn(role="assistant", content=text, tokens=1))
        if k < len(attempts) - 1:
            turns.append(Turn(role="user", content="Close, but not quite.", tokens=1))
    return Dialogue(
        id=did,
        question_id=qid,
        sample_index=int(did[-1]),
        attempts=len(attempts),
        solved=solved_at is not None,
        turns=turns,
        solved_at_turn=solved_at,
        stop_reason="solved" if solved_at else "turn_limit",
        final_answer=None,
        nudges_rejected=0,
        tokens_in=0,
        tokens_out=0,
        cost_usd=0.0,
        lineage=Lineage(question_id=qid, stage="dialogues", config_hash="h"),
    )


def _verdict(did: str, qid: str, accepted: bool) -> Verdict:
    return Verdict(
        dialogue_id=did,
        question_id=qid,
        accepted=accepted,
        programmatic_pass=accepted,
        programmatic_reason="",
        judge_score=None,
        judge_reasons="",
        reject_reasons=[],
        lineage=Lineage(question_id=qid, stage="verdicts", config_hash="h"),
    )


def _question(i: int, verification: str) -> Question:
    return Question(
        id=f"q{i}",
        source="s",
        task="t",
        prompt=f"Question {i}?",
        reference_answer=str(i),
        verification=verification,
        lineage=Lineage(question_id=f"q{i}", stage="questions", config_hash="h"),
    )


def test_every_correction_and_every_rejected_sample_makes_a_checked_pair():
    from raspberry.stages.sft.config import PreferenceConfig
    from raspberry.stages.sft.preferences import preference_pairs

    exact = lambda i: json.dumps({"kind": "exact", "reference": str(i)})  # noqa: E731
    questions = [_question(1, exact(1)), _question(2, exact(2)), _question(3, exact(3)),
                 _question(4, "{}"), _question(5, exact(5))]  # fmt: skip
    dialogues = [
        # q1: wrong twice, then right: a correction (the last wrong attempt by default).
        _dialogue("d1-0", "q1", ["Final answer: 7", "Final answer: 8", "Final answer: 1"], 3),
        # ...and a second sample that never got there: a pair across samples.
        _dialogue("d1-1", "q1", ["Final answer: 9"], None),
        _dialogue("d2-0", "q2", ["Final answer: 2"], 1),  # right at once: no pair
        # q3: the user stand-in nudged although the first attempt was right: that "wrong"
        # attempt passes the verifier, so it is no rejected side.
        _dialogue("d3-0", "q3", ["Final answer: 3", "Final answer: 3"], 2),
        _dialogue("d4-0", "q4", ["Final answer: x", "Final answer: y"], 2),  # no verifier
        _dialogue("d5-0", "q5", ["Final answer: 4", "Final answer: 5"], 2),
    ]
    verdicts = [_verdict(d.id, d.question_id, d.id != "d1-1") for d in dialogues]
    rows = [
        _row(1).model_copy(update={"dialogue_id": "d1-0"}),
        _row(2).model_copy(update={"dialogue_id": "d2-0"}),
        _row(3).model_copy(update={"dialogue_id": "d3-0"}),
        _row(4).model_copy(update={"dialogue_id": "d4-0"}),
        # The monologue for q5 ends on a wrong answer: its chosen side fails, so no pair.
        _row(5).model_copy(update={"dialogue_id": "d5-0", "response": "Final answer: 6"}),
    ]
    pairs, report = preference_pairs(rows, questions, dialogues, verdicts, PreferenceConfig())
    assert [(p["question_id"], p["kind"], p["rejected"]) for p in pairs] == [
        ("q1", "correction", "Final answer: 8"),
        ("q1", "across_samples", "Final answer: 9"),
    ]
    assert pairs[0]["chosen"] == rows[0].response and pairs[0]["prompt"] == "Question 1?"
    assert pairs[0]["chosen_from"] == "d1-0" and pairs[0]["rejected_attempt"] == 2
    assert pairs[1]["rejected_from"] == "d1-1"
    assert report == {
        "pairs": 2,
        "by_kind": {"correction": 1, "across_samples": 1},
        "left_out": {
            "rejected side passes its verifier": 1,
            "no programmatic verifier": 1,
            "chosen side fails its verifier": 1,
        },
    }
    every = PreferenceConfig(kinds=["correction"], rejected="every", chosen="final_attempt")
    pairs, _ = preference_pairs(rows[:1], questions, dialogues, verdicts, every)
    assert [(p["rejected"], p["chosen"]) for p in pairs] == [
        ("Final answer: 7", "Final answer: 1"), ("Final answer: 8", "Final answer: 1")]  # fmt: skip


def test_datasets_loads_the_exports(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    rows = [_row(i, "a" if i % 3 else "b", rewritten=bool(i % 2)) for i in range(60)]
    export_rows(
        _data(rows),
        ExportConfig(validation_share=0.1, reasoning_wrapper="fields"),
        Folder(tmp_path),
        MADE,
    )
    parquet = datasets.load_dataset(
        "parquet",
        data_files={
            "train": str(tmp_path / "parquet" / "train.parquet"),
            "validation": str(tmp_path / "parquet" / "validation.parquet"),
        },
        cache_dir=str(tmp_path / "hf"),
    )
    assert parquet["train"].num_rows + parquet["validation"].num_rows == 60
    assert parquet["validation"].num_rows == 6
    assert {"prompt", "reasoning", "answer", "source"} <= set(parquet["train"].column_names)
    for fmt in ("prompt_response", "openai_chat", "trl_prompt_completion", "sharegpt"):
        loaded = datasets.load_dataset(
            "json",
            data_files=str(tmp_path / f"{fmt}.jsonl"),
            split="train",
            cache_dir=str(tmp_path / "hf"),
        )
        assert loaded.num_rows == 60, fmt
    card = (tmp_path / "README.md").read_text()
    assert "60 questions, each with one answer" in card and "p/rewriter" in card
    assert "| `turns` | the teacher's attempt that was right (1: the first) |" in card
    assert "## A row" in card and "load_dataset(" in card and "| train |" in card
    assert "{" not in card.split("## Splits")[1]  # tables and words, no raw JSON
    assert os.path.exists(tmp_path / "export_report.json")


def test_the_exports_folder_loads_as_a_hub_dataset_with_each_config(tmp_path, monkeypatch):
    """Issue 22: the card's YAML maps each format and split to its files, so load_dataset takes
    the folder itself; nothing empty is written; files take the umask's modes."""
    import os

    import datasets
    from huggingface_hub import DatasetCard

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rows = [_row(i, "a" if i % 3 else "b", rewritten=bool(i % 2)) for i in range(40)]
    folder = tmp_path / "ex"
    old = os.umask(0o027)
    try:
        export_rows(_data(rows), ExportConfig(validation_share=0.1), Folder(folder), MADE)
    finally:
        os.umask(old)
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "other" and card.data.task_categories == ["text-generation"]
    assert card.data.size_categories == ["n<1K"]
    configs = {c["config_name"]: c for c in card.data.configs}
    # No preference pair can be made from these rows: no file, and no config, for them.
    assert set(configs) == {"prompt_response", "openai_chat", "trl_prompt_completion", "sharegpt"}
    assert configs["prompt_response"].get("default") is True
    assert not (folder / "preference_pairs.jsonl").exists()
    cache = str(tmp_path / "hf")
    default = datasets.load_dataset(str(folder), cache_dir=cache)
    assert set(default) == {"train", "validation"}
    assert default["train"].num_rows + default["validation"].num_rows == 40
    assert "prompt" in default["train"].column_names
    for name in configs:
        loaded = datasets.load_dataset(str(folder), name, cache_dir=cache)
        assert sum(split.num_rows for split in loaded.values()) == 40, name
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert all(p.stat().st_size > 0 for p in written)
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o640)}
