"""Exports of the SFT shards, written atomically into <build>/exports/.

Line i of every export file is the same SFT row, so openai_chat.jsonl (which may hold only
`messages`) is traced to its question through line i of prompt_response.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path

from raspberry.records import SftRow
from raspberry.store import write_text_atomic

FORMATS = ("prompt_response", "openai_chat")


def _lines(rows: list[SftRow], fmt: str) -> str:
    if fmt == "prompt_response":
        items = [
            {"id": r.id, "question_id": r.question_id, "prompt": r.prompt, "response": r.response}
            for r in rows
        ]
    else:
        items = [
            {
                "messages": [
                    {"role": "user", "content": r.prompt},
                    {"role": "assistant", "content": r.response},
                ]
            }
            for r in rows
        ]
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def export_rows(rows: list[SftRow], exports_dir: Path) -> dict[str, str]:
    """Write every format; return format name -> path."""
    paths = {}
    for fmt in FORMATS:
        path = exports_dir / f"{fmt}.jsonl"
        write_text_atomic(path, _lines(rows, fmt))
        paths[fmt] = str(path)
    return paths
