"""Raspberry builds self-correcting reasoning SFT data.

The Python API, loaded on first use (it sits in the application layer, over the core):
`raspberry.build(config, build_id=, stages=, output_dir=)` runs a build and returns a `Build`;
`raspberry.load_build(folder)` opens one; `raspberry.check(spec, answer)` verifies one answer.
"""

from raspberry.lazy import lazy_names

_HOMES = {
    "build": "raspberry_app.api",
    "load_build": "raspberry_app.api",
    "Build": "raspberry_app.api",
    "check": "raspberry.verify",
}
__all__ = list(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)
