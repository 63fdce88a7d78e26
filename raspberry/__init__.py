"""Raspberry builds self-correcting reasoning SFT data.

The Python API (raspberry/api.py), loaded on first use to keep `import raspberry.<module>` light:
`raspberry.build(config, build_id=, stages=, output_dir=)` runs a build and returns a `Build`;
`raspberry.load_build(folder)` opens one; `raspberry.check(spec, answer)` verifies one answer;
`raspberry.register_source(Source(...))` and `raspberry.register_verifier(Verifier(...))` add
a question source or a verification kind of your own (docs/extending.md).

`lazy_names` makes that: names a package exports but loads on first use, to keep `import
raspberry.<module>` light and free of cycles (raspberry.llm uses it too).
"""

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that loads `name` from the module `homes[name]` when first asked."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(homes[name]), name)

    return __getattr__


_HOMES = {
    "build": "raspberry.api",
    "load_build": "raspberry.api",
    "Build": "raspberry.api",
    "check": "raspberry.verify",
    "CheckResult": "raspberry.verify",
    "Verifier": "raspberry.verify.checks",
    "register_verifier": "raspberry.verify.checks",
    "Source": "raspberry.stages.candidates.sources",
    "SourceContext": "raspberry.stages.candidates.sources",
    "register_source": "raspberry.stages.candidates.registry",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
