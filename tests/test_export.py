import json
import os

import pytest

from raspberry.records import Dialogue, Lineage, Question, SftRow, Turn, Verdict
from raspberry.sft.card import Made
from raspberry.sft.config import ExportConfig
from raspberry.sft.export import BuildRows, export_rows, mix, preference_pairs, splits
from raspberry.sft.formats import prompt_response, trl_prompt_completion
from raspberry.sft.openai_checks import check_lines, count_tokens, format_errors
from raspberry.storage import Folder


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


def test_preference_pairs_need_an_accepted_and_a_rejected_sample():
    def dialogue(did, qid, answer):
        return Dialogue(
            id=did,
            question_id=qid,
            sample_index=0,
            attempts=1,
            solved=False,
            turns=[
                Turn(role="user", content="Q", tokens=0),
                Turn(role="assistant", content=answer, tokens=1),
            ],
            solved_at_turn=None,
            stop_reason="turn_limit",
            final_answer=None,
            nudges_rejected=0,
            tokens_in=0,
            tokens_out=0,
            cost_usd=0.0,
            lineage=Lineage(question_id=qid, stage="dialogues", config_hash="h"),
        )

    def verdict(did, qid, accepted):
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

    questions = [
        Question(
            id=f"q{i}",
            source="s",
            task="t",
            prompt=f"Question {i}?",
            reference_answer="1",
            verification="{}",
            lineage=Lineage(question_id=f"q{i}", stage="questions", config_hash="h"),
        )
        for i in (1, 2)
    ]
    dialogues = [
        dialogue("d1", "q1", "right"),
        dialogue("x1", "q1", "Final answer: wrong"),
        dialogue("d2", "q2", "right"),
    ]
    verdicts = [verdict("d1", "q1", True), verdict("x1", "q1", False), verdict("d2", "q2", True)]
    pairs = preference_pairs([_row(1), _row(2)], questions, dialogues, verdicts)
    assert pairs == [
        {"prompt": "Question 1?", "chosen": _row(1).response, "rejected": "Final answer: wrong"}
    ]


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
    assert "| rows | 60 |" in card and "p/rewriter" in card
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
