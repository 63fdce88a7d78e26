"""A thinking teacher, simulated: what a request that asks for thinking gets, on each protocol.

Anthropic's extended thinking (`thinking: {type: enabled, budget_tokens}`) answers with a
`thinking` block before the text; OpenAI-compatible servers running a reasoning parser (vLLM,
SGLang, DeepSeek; asked with `chat_template_kwargs.enable_thinking`) return it as
`message.reasoning_content`; OpenAI's reasoning models (`reasoning_effort`) keep it hidden and
report only `reasoning_tokens`. Each counts it in the output tokens, as billed.
"""

from __future__ import annotations

from typing import Any

from raspberry_sim.roles import rng_for

_EFFORT = {"minimal": 1, "low": 2, "medium": 4, "high": 8}


def asked(style: str, body: dict[str, Any]) -> str | None:
    """How the request asks for thinking: "visible", "hidden", or None (it does not)."""
    if style == "anthropic":
        thinking = body.get("thinking") or {}
        return "visible" if thinking.get("type") == "enabled" else None
    if (body.get("chat_template_kwargs") or {}).get("enable_thinking"):
        return "visible"
    return "hidden" if body.get("reasoning_effort") else None


def invalid(body: dict[str, Any], max_tokens: int) -> str | None:
    """Anthropic's documented refusals of a thinking request, or None."""
    budget = (body.get("thinking") or {}).get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "thinking.budget_tokens: must be an integer of at least 1024"
    if budget >= max_tokens:
        return "max_tokens must be greater than thinking.budget_tokens"
    if body.get("temperature") not in (None, 1, 1.0):
        return "temperature may only be set to 1 when thinking is enabled"
    return None


def think(question: str, answer: str, effort: str | None = None) -> str:
    """The private reasoning behind `answer`: it restates, plans and checks before answering."""
    rng = rng_for("think", question, answer)
    lines = [
        f"The question: {question.strip()[:160]}",
        "What is being asked, exactly? Let me pin down the quantities before computing.",
        "Plan: work it step by step, then check the result another way.",
    ]
    checks = [
        "Check: substitute the result back in; it holds.",
        "Check: recount from the other end; same result.",
        "Hmm, one step looked off; redo it slowly; it was fine.",
    ]
    repeats = _EFFORT.get(effort or "", 2)
    lines += [rng.choice(checks) for _ in range(repeats)]
    return "\n".join(lines)
