"""The only door to any model. Nothing else in the project imports anthropic or openai."""

from raspberry.llm.gateway import Gateway, GatewayStats
from raspberry.llm.types import MAX_TOKENS, REFUSAL, STOP, Completion, ContextLimitError

__all__ = [
    "Gateway",
    "GatewayStats",
    "Completion",
    "ContextLimitError",
    "STOP",
    "MAX_TOKENS",
    "REFUSAL",
]
