"""Questions from the user's own files: JSONL, Parquet or CSV, with a column mapping.

A row that cannot be a question (bad JSON, no prompt, no answer, a verification spec that cannot
check it) is reported with its line number and left out; the rest of the file is kept. A file
that is missing or lacks the prompt column altogether is a ConfigError: nothing of it can be used.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from raspberry.build_files.records import Lineage, Question
from raspberry.errors import ConfigError
from raspberry.stages.candidates.answers import spec_for, spec_json, spec_problem
from raspberry.stages.candidates.config import QuestionFile, QuestionsConfig
from raspberry.stages.candidates.sources import Source, SourceContext
from raspberry.stages.candidates.text import question_id

SOURCE = "files"


def file_path(spec: QuestionFile, config_dir: Path) -> Path:
    return (config_dir / spec.path).resolve()


def _format(spec: QuestionFile, path: Path) -> str:
    if spec.format != "auto":
        return spec.format
    suffix = path.suffix.lower()
    formats = {".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv"}
    if suffix not in formats:
        raise ConfigError(
            f"question file {path}: cannot tell its format from '{suffix}'; "
            "set format: jsonl, parquet or csv"
        )
    return formats[suffix]


def _rows(spec: QuestionFile, path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """(where, row) for every row, or (where, problem) for a row that is not a record."""
    fmt = _format(spec, path)
    try:
        if fmt == "parquet":
            table = pq.read_table(path)
            _require_column(spec, path, table.column_names)
            for i, row in enumerate(table.to_pylist(), 1):
                yield f"{path}: row {i}", row
            return
        with open(path, encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                reader = csv.DictReader(fh)
                _require_column(spec, path, reader.fieldnames or [])
                for row in reader:
                    yield f"{path}:{reader.line_num}", row
                return
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"{path}:{number}", f"not valid JSON ({exc.msg})"
                    continue
                yield f"{path}:{number}", row if isinstance(row, dict) else "not a JSON object"
    except FileNotFoundError:
        raise ConfigError(f"question file not found: {path} (check questions.files)") from None
    except (OSError, UnicodeDecodeError, pa.ArrowException, csv.Error) as exc:
        raise ConfigError(f"cannot read question file {path} as {fmt}: {exc}") from None


def _require_column(spec: QuestionFile, path: Path, columns: list[str]) -> None:
    if spec.columns.prompt not in columns:
        raise ConfigError(
            f"question file {path} has no column '{spec.columns.prompt}' (it has {columns}); "
            "set columns.prompt to the column holding the question"
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _question(
    spec: QuestionFile, row: dict[str, Any], config_hash: str, task: str
) -> Question | str:
    """The row as a question, or why it cannot be one."""
    cols = spec.columns
    prompt = row.get(cols.prompt)
    if not isinstance(prompt, str) or not prompt.strip():
        return f"no question in column '{cols.prompt}'"
    answer = _text(row.get(cols.answer)) if cols.answer else ""
    if cols.verification and _text(row.get(cols.verification)):
        try:
            verification = json.loads(_text(row[cols.verification]))
        except json.JSONDecodeError as exc:
            return f"column '{cols.verification}' is not valid JSON ({exc.msg})"
    elif not answer:
        return f"no answer in column '{cols.answer}'"
    else:
        verification = spec_for(spec.answer_type, answer)
    problem = spec_problem(verification, answer)
    if problem:
        return problem
    prompt = prompt.strip()
    qid = question_id(prompt)
    source_id = _text(row.get(cols.id)) if cols.id else ""
    return Question(
        id=qid,
        source=SOURCE,
        task=task,
        domain=_text(row.get(cols.domain)) if cols.domain else "",
        style="user",
        prompt=prompt,
        reference_answer=answer,
        verification=spec_json(verification),
        lineage=Lineage(
            question_id=qid,
            config_hash=config_hash,
            steps=[f"file {spec.path}" + (f" id {source_id}" if source_id else "")],
        ),
    )


def needs_confirmation(cfg: QuestionsConfig, question: Question) -> bool:
    return any(f.confirm and question.task == Path(f.path).stem for f in cfg.files)


async def generate(ctx: SourceContext) -> list[Question]:
    """This shard's rows of every file (every n-th row); a malformed row is reported in
    ctx.malformed."""
    questions: list[Question] = []
    for spec in ctx.questions.files:
        path = file_path(spec, ctx.folder)
        for index, (where, row) in enumerate(_rows(spec, path)):
            if index % ctx.shards != ctx.shard:
                continue
            made = row if isinstance(row, str) else _question(spec, row, ctx.config_hash, path.stem)
            if isinstance(made, str):
                ctx.malformed.append(f"{where}: {made}")
            else:
                questions.append(made)
    return questions


def validate(cfg: QuestionsConfig, config_dir: Path) -> None:
    """Fail fast on a file that is missing, unreadable, has no prompt column or no row that can
    be a question (read up to its first good row)."""
    for spec in cfg.files:
        path = file_path(spec, config_dir)
        problem = "it is empty"
        for where, row in _rows(spec, path):
            made = row if isinstance(row, str) else _question(spec, row, "", path.stem)
            if not isinstance(made, str):
                break
            if problem == "it is empty":
                problem = f"{where}: {made}"
        else:
            raise ConfigError(
                f"question file {path} has no usable question ({problem}); fix it or remove it "
                "from questions.files"
            )


SPEC = Source(
    SOURCE,
    generate,
    enabled=lambda questions: bool(questions.files),
    check=lambda ctx: validate(ctx.questions, ctx.folder),
)
