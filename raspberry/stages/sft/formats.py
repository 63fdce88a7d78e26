"""One SFT row in each export format, with the optional reasoning wrapper.

The wrapper splits a response at its last `Final answer:` line: `think` puts the reasoning in
<think>...</think> before the answer; `fields` adds separate `reasoning` and `answer` fields to
the formats that can hold them (prompt_response, Parquet), while chat formats keep the whole
response as the assistant's message. A row's own thinking (a thinking teacher's, kept when
sft.export.thinking is on) opens the reasoning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from raspberry.build_files.records import SftRow

_FINAL_LINE = re.compile(r"^.*final\s+answer\s*[:：].*$", re.IGNORECASE | re.MULTILINE)


def split_answer(response: str) -> tuple[str, str]:
    """(reasoning, answer): the answer is the last `Final answer:` line and what follows it."""
    matches = list(_FINAL_LINE.finditer(response))
    if not matches:
        return response.strip(), ""
    start = matches[-1].start()
    return response[:start].strip(), response[start:].strip()


def reasoning_and_answer(row: SftRow) -> tuple[str, str]:
    """The row's reasoning (its thinking first, when it has any) and its answer."""
    reasoning, answer = split_answer(row.response)
    if row.thinking:
        reasoning = f"{row.thinking.strip()}\n\n{reasoning}".strip()
    return reasoning, answer


def completion(row: SftRow, wrapper: str) -> str:
    if wrapper != "think":
        return row.response
    reasoning, answer = reasoning_and_answer(row)
    return f"<think>\n{reasoning}\n</think>\n\n{answer}"


def metadata(row: SftRow) -> dict[str, Any]:
    """What a row can be filtered by, in every format that can carry it."""
    return {
        "id": row.id,
        "question_id": row.question_id,
        "source": row.source,
        "turns": row.turns,
        "rewritten": row.rewritten,
    }


def prompt_response(row: SftRow, wrapper: str) -> dict[str, Any]:
    out: dict[str, Any] = {**metadata(row), "prompt": row.prompt}
    if wrapper == "fields":
        out["reasoning"], out["answer"] = reasoning_and_answer(row)
    else:
        out["response"] = completion(row, wrapper)
    return out


def openai_chat(row: SftRow, wrapper: str) -> dict[str, Any]:
    # Only `messages`: OpenAI's fine-tuning files take no other key.
    return {
        "messages": [
            {"role": "user", "content": row.prompt},
            {"role": "assistant", "content": completion(row, wrapper)},
        ]
    }


def trl_prompt_completion(row: SftRow, wrapper: str) -> dict[str, Any]:
    """TRL's conversational prompt-completion format: the trainer applies the chat template."""
    return {
        "prompt": [{"role": "user", "content": row.prompt}],
        "completion": [{"role": "assistant", "content": completion(row, wrapper)}],
        "metadata": metadata(row),
    }


def sharegpt(row: SftRow, wrapper: str) -> dict[str, Any]:
    return {
        "conversations": [
            {"from": "human", "value": row.prompt},
            {"from": "gpt", "value": completion(row, wrapper)},
        ],
        "metadata": metadata(row),
    }


JSONL_FORMATS: dict[str, Callable[[SftRow, str], dict[str, Any]]] = {
    "prompt_response": prompt_response,
    "openai_chat": openai_chat,
    "trl_prompt_completion": trl_prompt_completion,
    "sharegpt": sharegpt,
}
