"""The only door to any model. Nothing else in the project imports anthropic or openai.

Its names load on first use, so that reading a config (which imports raspberry/llm/config.py)
does not import the SDKs. The gateway reads only its own sections (`LlmSettings`,
`BuildConfig.llm`), never the whole build config.
"""

from raspberry import lazy_names

_HOMES = {
    name: f"raspberry.llm.{module}"
    for module, names in {
        "gateway": ["Gateway"],
        "types": [
            "Completion",
            "ContextLimitError",
            "GatewayStats",
            "Request",
            "STOP",
            "MAX_TOKENS",
            "REFUSAL",
        ],  # fmt: skip
    }.items()
    for name in names
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
