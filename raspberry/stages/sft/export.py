"""Exports of a build's SFT rows into <build>/exports/, written atomically.

Every JSONL format holds all rows at the top level (line i is the same row in every format, so
openai_chat.jsonl, which may hold only `messages`, traces to its question through line i of
prompt_response.jsonl), and again split into train/ and validation/. Parquet goes to
parquet/{train,validation}.parquet. Before writing: rows over the token limit are dropped, the
first-try / self-corrected mix is applied, and the split is drawn per source.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import astuple, dataclass
from typing import Any

import pyarrow as pa

from raspberry.build_files.folder import Folder
from raspberry.build_files.records import Dialogue, Question, SftRow, Verdict
from raspberry.llm.tokens import count_tokens
from raspberry.stages.sft.card import Made, dataset_card
from raspberry.stages.sft.config import ExportConfig
from raspberry.stages.sft.formats import JSONL_FORMATS, prompt_response
from raspberry.stages.sft.openai_checks import check_lines
from raspberry.stages.sft.preferences import preference_pairs
from raspberry.stages.sft.rl import rl_rows

FORMATS = (*JSONL_FORMATS, "preference_pairs", "rl", "parquet")
SPLITS = ("train", "validation")


def _rank(text: str) -> str:
    """A stable pseudo-random order, the same on every machine and every run."""
    return hashlib.sha256(text.encode()).hexdigest()


def mix(rows: list[SftRow], share: float | None) -> tuple[list[SftRow], dict[str, int]]:
    """Keep all of the scarcer kind and a stable sample of the other, to reach the share of
    self-corrected rows (None keeps every row)."""
    corrected = [r for r in rows if r.rewritten]
    first = [r for r in rows if not r.rewritten]

    def sample(group: list[SftRow], n: int) -> list[SftRow]:
        return sorted(group, key=lambda r: _rank(r.id))[:n]

    if share is not None:
        if share < 1 and len(corrected) * (1 - share) > len(first) * share:
            corrected = sample(corrected, round(share * len(first) / (1 - share)))
        elif share > 0:
            first = sample(first, round(len(corrected) * (1 - share) / share))
    kept = {r.id for r in corrected + first}
    return [r for r in rows if r.id in kept], {
        "first_try": len(first),
        "self_corrected": len(corrected),
    }


def splits(rows: list[SftRow], share: float) -> dict[str, str]:
    """Row id -> split: within each source, a stable share of rows goes to validation."""
    by_source: dict[str, list[SftRow]] = {}
    for row in rows:
        by_source.setdefault(row.source, []).append(row)
    out = {}
    for group in by_source.values():
        ordered = sorted(group, key=lambda r: _rank(r.id))
        n_validation = math.floor(len(ordered) * share + 0.5) if len(ordered) > 1 else 0
        for i, row in enumerate(ordered):
            out[row.id] = "validation" if i < n_validation else "train"
    return out


def _jsonl(folder: Folder, path: str, items: list[dict[str, Any]]) -> str:
    """Write a JSONL file; return its text."""
    text = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
    folder.write_text(path, text)
    return text


def _by_question(
    folder: Folder,
    fmt: str,
    items: list[dict[str, Any]],
    question_split: dict[str, str],
    files: dict[str, dict[str, str]],
) -> str:
    """Write <fmt>.jsonl, and each split's share (by the split of the item's question; a question
    without an SFT row trains); record the split files; return the whole file's URL."""
    _jsonl(folder, f"{fmt}.jsonl", items)
    for split in SPLITS:
        if chosen := [i for i in items if question_split.get(i["question_id"], "train") == split]:
            _jsonl(folder, f"{split}/{fmt}.jsonl", chosen)
            files.setdefault(fmt, {})[split] = f"{split}/{fmt}.jsonl"
    return folder.url(f"{fmt}.jsonl")


def _parquet(folder: Folder, path: str, rows: list[SftRow], wrapper: str) -> None:
    items = [
        {
            **prompt_response(r, wrapper),
            "source": r.source,
            "rewritten": r.rewritten,
            "retention": r.retention,
        }
        for r in rows
    ]
    folder.write_table(path, pa.Table.from_pylist(items))


@dataclass
class BuildRows:
    """What the exports are made from: the SFT rows and the rows they came from."""

    sft: list[SftRow]
    questions: list[Question]
    dialogues: list[Dialogue]
    verdicts: list[Verdict]


def export_rows(
    data: BuildRows,
    cfg: ExportConfig,
    folder: Folder,
    made: Made,
    formats: tuple[str, ...] = FORMATS,
) -> dict[str, Any]:
    """Write the chosen formats and the report and card; return their paths and the report."""
    # Thinking is exported only when asked for: rows keep it either way.
    rows = data.sft if cfg.thinking else [r.model_copy(update={"thinking": ""}) for r in data.sft]
    within = [
        r
        for r in rows
        if count_tokens(
            JSONL_FORMATS["openai_chat"](r, cfg.reasoning_wrapper)["messages"], cfg.encoding
        )
        <= cfg.max_tokens_per_example
    ]
    mixed, mix_counts = mix(within, cfg.self_corrected_share)
    split_of = splits(mixed, cfg.validation_share)
    by_split = {s: [r for r in mixed if split_of[r.id] == s] for s in SPLITS}
    # A question's pairs and RL row go to its SFT row's split: validation stays unseen.
    question_split = {r.question_id: split_of[r.id] for r in mixed}
    # No empty file is written: a format or split without rows is left out (and out of the card).
    paths: dict[str, str] = {}
    files: dict[str, dict[str, str]] = {}  # format -> split -> path within the folder
    pairs: list[dict[str, Any]] = []
    texts: dict[str, str] = {}
    for fmt in formats:
        if fmt in JSONL_FORMATS and mixed:
            texts[fmt] = _jsonl(
                folder,
                f"{fmt}.jsonl",
                [JSONL_FORMATS[fmt](r, cfg.reasoning_wrapper) for r in mixed],
            )
            paths[fmt] = folder.url(f"{fmt}.jsonl")
            for split, split_rows in by_split.items():
                if split_rows:
                    _jsonl(
                        folder,
                        f"{split}/{fmt}.jsonl",
                        [JSONL_FORMATS[fmt](r, cfg.reasoning_wrapper) for r in split_rows],
                    )
                    files.setdefault(fmt, {})[split] = f"{split}/{fmt}.jsonl"
        elif fmt == "parquet" and mixed:
            for split, split_rows in by_split.items():
                if split_rows:
                    _parquet(folder, f"parquet/{split}.parquet", split_rows, cfg.reasoning_wrapper)
                    files.setdefault(fmt, {})[split] = f"parquet/{split}.parquet"
            paths[fmt] = folder.url("parquet")
        elif fmt == "preference_pairs":
            pairs, preference = preference_pairs(
                within, data.questions, data.dialogues, data.verdicts, cfg.preference
            )
            if pairs:
                paths[fmt] = _by_question(folder, fmt, pairs, question_split, files)
        elif fmt == "rl":
            rl = rl_rows(data.questions, data.verdicts)
            if rl:
                paths[fmt] = _by_question(folder, fmt, rl, question_split, files)
    report: dict[str, Any] = {
        "rows_in": len(rows),
        "dropped_over_token_limit": len(rows) - len(within),
        "mix": mix_counts,
        "rows_out": len(mixed),
        "splits": {
            s: dict(Counter(r.source for r in mixed if split_of[r.id] == s)) for s in SPLITS
        },
        "reasoning_wrapper": cfg.reasoning_wrapper,
    }
    if "openai_chat" in texts:
        report["openai_chat_checks"] = check_lines(
            texts["openai_chat"], cfg.encoding, cfg.max_tokens_per_example
        )
    if "rl" in formats:
        report["rl_rows"] = len(rl)
    if "preference_pairs" in formats:
        report["preference_pairs"] = len(pairs)
        report["preference"] = preference
    folder.write_text("export_report.json", json.dumps(report, indent=2))
    lineages = [row.lineage for stage_rows in astuple(data) for row in stage_rows]
    card = dataset_card(mixed, report, lineages, made, files, cfg.license)
    folder.write_text("README.md", card)
    return {"paths": paths, "report": report}
