"""Raspberry builds self-correcting reasoning SFT data.

The Python API, loaded on first use (it sits in the application layer, over the core):
`raspberry.build(config, build_id=, stages=, output_dir=)` runs a build and returns a `Build`;
`raspberry.load_build(folder)` opens one; `raspberry.check(spec, answer)` verifies one answer.
"""

from importlib import import_module
from typing import Any

_HOME = {
    "build": "raspberry_app.api",
    "load_build": "raspberry_app.api",
    "Build": "raspberry_app.api",
    "check": "raspberry.verify",
}
__all__ = list(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'raspberry' has no attribute {name!r}")
    return getattr(import_module(_HOME[name]), name)
