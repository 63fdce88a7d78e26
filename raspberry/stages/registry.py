"""The build's stages, in order: one package each, registered here by one line each.

Everything that runs or reports a build (the Prefect flow and tasks, the build report, the CLI
summary, the preflight checks, the estimate) reads this registry; a stage's name is written in
its own package.
"""

from __future__ import annotations

from pathlib import Path

from raspberry.errors import RaspberryError
from raspberry.stages.candidates import stage as candidates
from raspberry.stages.config import BuildConfig
from raspberry.stages.dialogues import stage as dialogues
from raspberry.stages.questions import stage as questions
from raspberry.stages.sft import stage as sft
from raspberry.stages.spec import Stage
from raspberry.stages.verdicts import stage as verdicts

_REGISTRY: dict[str, Stage] = {}


def register(spec: Stage) -> Stage:
    """Add a stage after those registered before it; its upstream stages must be among them."""
    missing = sorted(u for u in spec.reads() if u not in _REGISTRY)
    if missing:
        raise ValueError(f"stage {spec.name!r} reads {missing}, not registered before it")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    return list(_REGISTRY)


def stages() -> list[Stage]:
    return list(_REGISTRY.values())


def exporting() -> Stage:
    """The stage whose rows the build's exports hold."""
    return next(s for s in _REGISTRY.values() if s.exports)


def stage(name: str) -> Stage:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RaspberryError(f"unknown stage {name!r}; the stages are {names()}") from None


def selected(text: str | None) -> list[str]:
    """The stages a comma-separated list names (--stages), in its order; all when empty."""
    if not text:
        return names()
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages:
        raise RaspberryError(f"--stages {text!r} names no stage; choose from {names()}")
    unknown = [s for s in stages if s not in names()]
    if unknown:
        raise RaspberryError(f"unknown stage(s) {unknown} in --stages; choose from {names()}")
    return stages


def stage_keys(config: BuildConfig, selected: list[str]) -> dict[str, str]:
    return {name: stage(name).key(config) for name in selected}


def input_files(config: BuildConfig, selected: list[str]) -> dict[str, dict[str, str]]:
    """The files each selected stage reads ({stage: {path: digest}}), recorded with the build."""
    return {name: found for name in selected if (found := stage(name).input_files(config))}


def recipe(config: BuildConfig, stages: list[str]) -> dict[str, str]:
    """What made the build, as files to travel with its data: the config as written and the
    prompt files the stages read ({path in the export folder: text})."""
    folder = config.prompts_path()
    names = sorted({name for s in stages for name, _ in stage(s).prompts(config).values()})
    return {
        "recipe/config.yaml": Path(config.source).read_text(encoding="utf-8"),
        **{
            f"recipe/prompts/{n}.md": (folder / f"{n}.md").read_text(encoding="utf-8")
            for n in names
        },
    }


def changed_files(recorded: dict[str, dict[str, str]], config: BuildConfig) -> list[str]:
    """What changed since `recorded` (input_files of an earlier run), one line a file."""
    said = []
    for name, files in recorded.items():
        if name not in _REGISTRY:
            continue
        now = stage(name).input_files(config)
        for path in sorted(set(files) | set(now)):
            if path not in now:
                said.append(f"{path} is no longer read by {name}")
            elif files.get(path) != now[path]:
                what = "is new to" if path not in files else "was edited; it is read by"
                said.append(f"{path} {what} {name}")
    return said


register(candidates.STAGE)
register(questions.STAGE)
register(dialogues.STAGE)
register(verdicts.STAGE)
register(sft.STAGE)
