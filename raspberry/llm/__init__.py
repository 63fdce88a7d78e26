"""The only door to any model. Nothing else in the project imports anthropic or openai.

Its names load on first use: the build config imports this package's config sections
(raspberry/llm/config.py), and the gateway imports the build config.
"""

from raspberry.lazy import lazy_names

_HOMES = {
    name: f"raspberry.llm.{module}"
    for module, names in {
        "gateway": ["Gateway", "GatewayStats"],
        "types": ["Completion", "ContextLimitError", "Request", "STOP", "MAX_TOKENS", "REFUSAL"],
    }.items()
    for name in names
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
