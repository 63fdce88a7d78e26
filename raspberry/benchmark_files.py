"""One reader for benchmark files: the eval flow measures models on them, and the question stage
can screen new questions against them.

Formats:
- SimpleBench JSON: {"eval_data": [{"question_id", "prompt", "answer"}]}, answers A-F.
- JSONL, one question a line: {"id"?, "question", "answer", "verifier"?, "tolerance"?} where
  verifier is mcq, exact or numeric (default exact).
- Parquet with the same columns as the JSONL keys, one question a row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from raspberry.errors import BenchmarkFileError
from raspberry.verify import has_verifier

LETTERS = set("ABCDEF")
KINDS = ("mcq", "exact", "numeric")


class BenchmarkItem(BaseModel):
    id: str
    prompt: str
    answer: str
    verification: dict[str, Any]
    group: str = ""  # what results are broken down by: a task or a source


def _simplebench(path: Path, data: dict[str, Any]) -> list[BenchmarkItem]:
    rows = data.get("eval_data")
    if not isinstance(rows, list) or not rows:
        raise BenchmarkFileError(f"{path}: 'eval_data' must be a non-empty list of questions")
    items = []
    for i, row in enumerate(rows):
        where = f"{path}: eval_data[{i}]"
        if not isinstance(row, dict):
            raise BenchmarkFileError(f"{where} is not an object")
        qid = row.get("question_id", i + 1)
        prompt, answer = row.get("prompt"), row.get("answer")
        if not isinstance(prompt, str) or not prompt.strip():
            raise BenchmarkFileError(f"{where} (question_id {qid}) has no prompt")
        if not isinstance(answer, str) or answer.strip().upper() not in LETTERS:
            raise BenchmarkFileError(
                f"{where} (question_id {qid}) has answer {answer!r}; a letter A-F is required"
            )
        items.append(
            BenchmarkItem(
                id=str(qid),
                prompt=prompt,
                answer=answer.strip().upper(),
                verification={"kind": "mcq", "reference": answer.strip().upper()},
            )
        )
    return items


def _jsonl_item(path: Path, number: int, line: str) -> BenchmarkItem:
    where = f"{path}:{number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise BenchmarkFileError(f"{where}: each line must be a JSON object")
    return _item(where, number, row)


def _item(where: str, number: int, row: dict[str, Any]) -> BenchmarkItem:
    """A question from a JSONL line or a Parquet row (same keys)."""
    question, answer = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise BenchmarkFileError(f"{where}: no 'question'")
    if answer is None or str(answer).strip() == "":
        raise BenchmarkFileError(f"{where}: question has no 'answer'")
    if isinstance(row.get("verification"), dict):  # a whole spec (docs/verification.md)
        if not has_verifier(row["verification"]):
            raise BenchmarkFileError(f"{where}: 'verification' has no known kind")
        return BenchmarkItem(
            id=str(row.get("id", number)), prompt=question, answer=str(answer).strip(),
            verification=row["verification"], group=str(row.get("group", "")),
        )  # fmt: skip
    kind = row.get("verifier", "exact")
    if kind not in KINDS:
        raise BenchmarkFileError(f"{where}: verifier {kind!r} is not one of {list(KINDS)}")
    spec: dict[str, Any] = {"kind": kind, "reference": str(answer).strip()}
    if kind == "mcq" and spec["reference"].upper() not in LETTERS:
        raise BenchmarkFileError(f"{where}: an mcq answer must be a letter A-F")
    if "tolerance" in row:
        spec["tolerance"] = row["tolerance"]
    return BenchmarkItem(
        id=str(row.get("id", number)), prompt=question, answer=spec["reference"],
        verification=spec, group=str(row.get("group", "")),
    )  # fmt: skip


def write_items(path: Path, items: list[BenchmarkItem]) -> None:
    """Items as a benchmark JSONL file that read_benchmark reads back whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(
        json.dumps({"id": i.id, "question": i.prompt, "answer": i.answer,
                    "verification": i.verification, "group": i.group}) + "\n"
        for i in items
    ))  # fmt: skip


def read_benchmark(path: str | Path) -> list[BenchmarkItem]:
    """All questions of a benchmark file; any problem is one BenchmarkFileError line."""
    path = Path(path)
    if path.suffix == ".parquet":
        return _checked(path, _parquet(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchmarkFileError(f"benchmark file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchmarkFileError(f"cannot read benchmark file {path}: {exc}") from None
    if path.suffix == ".jsonl":
        items = [
            _jsonl_item(path, n, line)
            for n, line in enumerate(text.splitlines(), 1)
            if line.strip()
        ]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchmarkFileError(
                f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})"
            ) from None
        if not isinstance(data, dict) or "eval_data" not in data:
            raise BenchmarkFileError(
                f'{path}: expected SimpleBench JSON {{"eval_data": [...]}} or a .jsonl file'
            )
        items = _simplebench(path, data)
    return _checked(path, items)


def _parquet(path: Path) -> list[BenchmarkItem]:
    try:
        rows = pq.read_table(path).to_pylist()
    except FileNotFoundError:
        raise BenchmarkFileError(f"benchmark file not found: {path}") from None
    except (OSError, pa.ArrowException) as exc:
        raise BenchmarkFileError(f"cannot read benchmark file {path} as Parquet: {exc}") from None
    return [_item(f"{path}: row {n}", n, row) for n, row in enumerate(rows, 1)]


def _checked(path: Path, items: list[BenchmarkItem]) -> list[BenchmarkItem]:
    if not items:
        raise BenchmarkFileError(f"{path}: no questions")
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise BenchmarkFileError(f"{path}: question id {item.id!r} appears twice")
        seen.add(item.id)
    return items
