"""The only door to any model. Nothing else in the project imports anthropic or openai.

Its names load on first use: the build config imports this package's config sections
(raspberry/llm/config.py), and the gateway imports the build config.
"""

from importlib import import_module
from typing import Any

_HOME = {
    "Gateway": "gateway",
    "GatewayStats": "gateway",
    "Completion": "types",
    "ContextLimitError": "types",
    "Request": "types",
    "STOP": "types",
    "MAX_TOKENS": "types",
    "REFUSAL": "types",
}
__all__ = list(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'raspberry.llm' has no attribute {name!r}")
    return getattr(import_module(f"raspberry.llm.{_HOME[name]}"), name)
