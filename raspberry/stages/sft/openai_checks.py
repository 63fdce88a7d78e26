"""The checks OpenAI's fine-tuning cookbook applies to a chat-format JSONL file, with its token
counts (llm/tokens.py)."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

from raspberry.llm.tokens import count_tokens

ROLES = {"system", "user", "assistant", "function", "tool"}
KEYS = {"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"}


def format_errors(example: Any) -> list[str]:
    """The cookbook's format errors of one example (empty when it is valid)."""
    if not isinstance(example, dict):
        return ["data_type"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    errors = []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            errors.append("message_missing_key")
            continue
        if set(message) - KEYS:
            errors.append("message_unrecognized_key")
        if message["role"] not in ROLES:
            errors.append("unrecognized_role")
        content = message["content"]
        if not isinstance(content, str) or not content.strip():
            errors.append("missing_content")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    return errors


def check_lines(text: str, encoding: str, max_tokens: int) -> dict[str, Any]:
    """Format errors by kind, and token statistics, of a chat-format JSONL file's text."""
    errors: Counter[str] = Counter()
    tokens = []
    lines = text.splitlines()
    for line in lines:
        try:
            example = json.loads(line)
        except json.JSONDecodeError:
            errors["invalid_json"] += 1
            continue
        found = format_errors(example)
        errors.update(found)
        if not found:
            tokens.append(count_tokens(example["messages"], encoding))
    over = sum(t > max_tokens for t in tokens)
    return {
        "examples": len(lines),
        "format_errors": dict(errors),
        "encoding": encoding,
        "tokens": {
            "min": min(tokens, default=0),
            "max": max(tokens, default=0),
            "mean": round(statistics.fmean(tokens), 1) if tokens else 0,
            "median": statistics.median(tokens) if tokens else 0,
            "total": sum(tokens),
        },
        "over_limit": over,
        "max_tokens_per_example": max_tokens,
        "ok": not errors and not over,
    }
