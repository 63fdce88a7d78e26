"""Everything a build can check before a shard runs: stages, prompts, keys, question sources.

The CLI calls it before starting Prefect (an answer in a second, not after the server's start-up);
the build flow calls it again, so a scheduled run with a missing key fails at once with the reason.
"""

from __future__ import annotations

import os

from raspberry.build_files.folder import Folder
from raspberry.build_files.store import BuildStore, shard_name
from raspberry.errors import ConfigError, StoreError
from raspberry.llm.cache import RequestCache
from raspberry.llm.config import SIM_BASE_URL, resolve_api_key
from raspberry.stages import registry
from raspberry.stages.config import BuildConfig


def preflight(
    config: BuildConfig, stages: list[str], output_dir: str, build_id: str | None = None
) -> None:
    """Raise a one-line RaspberryError for the first problem found, or return."""
    _writable_folder(output_dir, "output_dir")
    specs = [registry.stage(s) for s in stages]
    needed = sorted({role for spec in registry.stages() for role in spec.roles(config)})
    missing = [r for r in needed if r not in config.models]
    if missing:
        raise ConfigError(f"models: roles {missing} are used by the build but not configured")
    for spec in specs:
        spec.load_prompts(config)
        for role in spec.roles(config):
            name = config.models[role].provider  # type: ignore[index]
            resolve_api_key(name, config.providers[name])
    check_prices(config, stages)
    if any(spec.roles(config) for spec in specs):
        RequestCache(config.gateway.state()).close()
    for spec in specs:
        if spec.check:
            spec.check(config, output_dir)
    if build_id is not None:
        _inputs_exist(config, stages, output_dir, build_id)


def check_prices(config: BuildConfig, stages: list[str]) -> None:
    """Every model the stages pay for has a price: an unpriced one would be booked at $0 and
    `budget.max_usd` could not count it. The simulator's models and local ones (this
    machine's) are free unless priced."""
    for spec in map(registry.stage, stages):
        for role in spec.roles(config):
            model = config.models[role]  # type: ignore[index]
            provider = config.providers[model.provider]
            free = provider.base_url == SIM_BASE_URL or provider.kind == "local"
            if model.model not in config.prices and not free:
                raise ConfigError(
                    f"models.{role}: model '{model.model}' has no price, so the build would book "
                    f"it at $0 and budget.max_usd could not count it; add prices: "
                    f"{{{model.model}: {{input_per_mtok: ..., output_per_mtok: ...}}}} (USD per "
                    f"million tokens), or prices: {{{model.model}: 0}} if it costs nothing"
                )


def _writable_folder(path: str, what: str) -> None:
    """A folder that exists or can be made (its first existing ancestor is a writable folder).
    Another backend (s3://...) says so at its first write."""
    if (p := Folder(path).local_path()) is None:
        return
    ancestor = next(a for a in [p, *p.parents] if a.exists())
    if not ancestor.is_dir():
        raise ConfigError(f"{what} {path}: {ancestor} is a file, not a folder; choose another")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: {ancestor} is not writable; choose another folder")


def _inputs_exist(config: BuildConfig, stages: list[str], output_dir: str, build_id: str) -> None:
    """Each stage left out of --stages that a chosen stage reads must be done in the build."""
    needed = [
        s
        for s in registry.names()
        if s not in stages and any(s in registry.stage(c).reads() for c in stages)
    ]
    if not needed:
        return
    store = BuildStore(output_dir, build_id)
    manifest = store.manifest() if store.exists() else {"stages": {}}
    for up in needed:
        shards = manifest["stages"].get(up, {})
        done = [shards.get(shard_name(i), {}).get("state") == "done" for i in range(config.shards)]
        if not all(done):
            raise StoreError(
                f"--stages {','.join(stages)} reads {up}, which build '{build_id}' has not "
                f"done ({sum(done)}/{len(done)} shards) under {output_dir}; add {up} to --stages "
                "or build it first"
            )
