"""Raspberry builds self-correcting reasoning SFT data.

The Python API (raspberry/api.py), loaded on first use to keep `import raspberry.<module>` light:
`raspberry.build(config, build_id=, stages=, output_dir=)` runs a build and returns a `Build`;
`raspberry.load_build(folder)` opens one; `raspberry.check(spec, answer)` verifies one answer;
`raspberry.register_source(Source(...))` and `raspberry.register_verifier(Verifier(...))` add
a question source or a verification kind of your own (docs/extending.md).
"""

from raspberry.lazy import lazy_names

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
