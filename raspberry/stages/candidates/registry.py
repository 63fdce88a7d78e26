"""The question sources a build can draw from: one registry, checked when a source is
registered (as reasoning-gym's `register_dataset` checks its entries). The built-in sources are
registered here, first and in the order their rows come; your own through
`raspberry.register_source(Source(...))` in the process that builds or, for every process (the
CLI, Dask workers, deployments), a `raspberry.sources` entry point naming the `Source` object.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points

from raspberry.build_files.records import Question
from raspberry.errors import ConfigError
from raspberry.stages.candidates import files, reasoning_gym_source, simplebench_style, synthesis
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.sources import Source, SourceContext

ENTRY_POINTS = "raspberry.sources"
_REGISTRY: dict[str, Source] = {}
_entry_points_loaded = False


def register_source(source: Source) -> Source:
    """Add a source; what it declares is checked here, not when a build first runs it."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", source.name):
        raise ValueError(f"source name {source.name!r}: lower case letters, digits and _")
    if source.name in _REGISTRY and _REGISTRY[source.name] is not source:
        raise ValueError(f"a source named {source.name!r} is already registered")
    if not inspect.iscoroutinefunction(source.generate):
        raise ValueError(f"source {source.name!r}: generate must be `async def generate(ctx)`")
    if source.enabled is None and source.settings is None:
        raise ValueError(
            f"source {source.name!r}: give its settings model (questions.sources.{source.name})"
        )
    if source.role and (source.planned is None or source.estimate is None):
        raise ValueError(
            f"source {source.name!r} asks {source.role}: give planned and estimate, or the "
            "estimate would price it at $0"
        )
    _REGISTRY[source.name] = source
    return source


def registered() -> list[Source]:
    """Every source, in the order registered: the built-in ones, those registered in this
    process, and those of the installed packages' `raspberry.sources` entry points (loaded
    once)."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for point in entry_points(group=ENTRY_POINTS):
            register_source(point.load())
    return list(_REGISTRY.values())


def asked_for(questions: QuestionsConfig) -> list[Source]:
    """The sources the config asks for, in the order they were registered; a name under
    questions.sources that no source has is a ConfigError."""
    sources = registered()
    unknown = sorted(set(questions.sources) - {s.name for s in sources if s.settings})
    if unknown:
        known = sorted(s.name for s in sources if s.settings) or "none"
        raise ConfigError(
            f"questions.sources.{unknown[0]}: no such source is registered (registered: "
            f"{known}); register it with raspberry.register_source or a '{ENTRY_POINTS}' "
            "entry point"
        )
    # Built-in sources (registered together, in one order) first, then your own by name: every
    # process makes a shard's rows in the same order, whatever it imported first.
    ordered = sorted(sources, key=lambda s: (s.settings is not None, s.name if s.settings else ""))
    return [s for s in ordered if s.asked_for(questions)]


def check(ctx: SourceContext) -> None:
    """Every asked-for source's settings and checks, before anything runs."""
    for source in asked_for(ctx.questions):
        named = SourceContext(
            ctx.questions, ctx.folder, ctx.config_hash, ctx.shard, name=source.name
        )
        if source.settings:
            named.settings(source.settings)
        source.check(named)


async def generate(ctx: SourceContext, free_only: bool = False) -> list[Question]:
    """This shard's questions of every asked-for source (of the free ones alone: those that ask
    no model), in registration order; malformed input rows are added to ctx.malformed."""
    rows: list[Question] = []
    for source in asked_for(ctx.questions):
        if free_only and source.role:
            continue
        named = SourceContext(
            ctx.questions, ctx.folder, ctx.config_hash, ctx.shard, ctx.gateway, ctx.prompts,
            ctx.malformed, source.name,
        )  # fmt: skip
        rows += await source.generate(named)
    return rows


for builtin in (reasoning_gym_source.SPEC, files.SPEC, simplebench_style.SPEC, synthesis.SPEC):
    register_source(builtin)
