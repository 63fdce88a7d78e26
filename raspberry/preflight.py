"""Everything a build can check before a shard runs: stages, prompts, keys, question sources.

The CLI calls it before starting Prefect (an answer in a second, not after the server's start-up);
the build flow calls it again, so a scheduled run with a missing key fails at once with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from raspberry.config import BuildConfig, resolve_api_key
from raspberry.errors import ConfigError, StoreError
from raspberry.llm.cache import RequestCache
from raspberry.questions import validate
from raspberry.stages import UPSTREAM, stage_prompts, stage_roles
from raspberry.store import manifest_path, read_manifest, shard_name


def preflight(
    config: BuildConfig, stages: list[str], output_dir: str, build_id: str | None = None
) -> None:
    """Raise a one-line RaspberryError for the first problem found, or return."""
    _writable_folder(output_dir, "output_dir")
    for stage in stages:
        stage_prompts(config, stage)
        for role in stage_roles(config, stage):
            name = config.models[role].provider
            resolve_api_key(name, config.providers[name])
    if any(stage_roles(config, s) for s in stages):
        RequestCache(config.gateway.cache_path).close()
    if "candidates" in stages:
        validate(config, output_dir)
    if build_id is not None:
        _inputs_exist(config, stages, output_dir, build_id)


def _writable_folder(path: str, what: str) -> None:
    """A folder that exists or can be made (its first existing ancestor is a writable folder)."""
    p = Path(path).resolve()
    ancestor = next(a for a in [p, *p.parents] if a.exists())
    if not ancestor.is_dir():
        raise ConfigError(f"{what} {path}: {ancestor} is a file, not a folder; choose another")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: {ancestor} is not writable; choose another folder")


def _inputs_exist(config: BuildConfig, stages: list[str], output_dir: str, build_id: str) -> None:
    """Each stage left out of --stages that a chosen stage reads must be done in the build."""
    needed = sorted(
        {u for s in stages for u in UPSTREAM[s] if u not in stages}, key=list(UPSTREAM).index
    )
    if not needed:
        return
    manifest = (
        read_manifest(output_dir, build_id)
        if manifest_path(output_dir, build_id).exists()
        else {"stages": {}}
    )
    for up in needed:
        shards = manifest["stages"].get(up, {})
        done = [
            shards.get(shard_name(i), {}).get("state") == "done"
            for i in range(config.questions.shards)
        ]
        if not all(done):
            raise StoreError(
                f"--stages {','.join(stages)} reads {up}, which build '{build_id}' has not "
                f"done ({sum(done)}/{len(done)} shards) under {output_dir}; add {up} to --stages "
                "or build it first"
            )
