"""Everything a build can check before a shard runs: stages, prompts, keys, question sources.

The CLI calls it before starting Prefect (an answer in a second, not after the server's start-up);
the build flow calls it again, so a scheduled run with a missing key fails at once with the reason.
"""

from __future__ import annotations

from raspberry.config import BuildConfig, resolve_api_key
from raspberry.questions import validate
from raspberry.stages import stage_prompts, stage_roles


def preflight(config: BuildConfig, stages: list[str], output_dir: str) -> None:
    """Raise a one-line RaspberryError for the first problem found, or return."""
    for stage in stages:
        stage_prompts(config, stage)
        for role in stage_roles(config, stage):
            name = config.models[role].provider
            resolve_api_key(name, config.providers[name])
    if "candidates" in stages:
        validate(config, output_dir)
