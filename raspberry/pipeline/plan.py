"""The build plan, free of any executor: what a shard or a build-wide input reads, and whether
it can run now. A shard runs when every input it reads is done with its file intact (present
and matching its recorded fingerprint); its inputs' fingerprints then key its cache."""

from __future__ import annotations

from typing import Any

from raspberry.build_files.folder import Folder
from raspberry.build_files.manifest import Manifest
from raspberry.build_files.store import BuildStore, shard_name
from raspberry.stages.config import BuildConfig
from raspberry.stages.spec import BuildInput, Stage

Inputs = dict[str, str]  # what is read -> its fingerprint


def shard_inputs(
    store: BuildStore, manifest: Manifest, spec: Stage, shard: int
) -> tuple[Inputs, str | None]:
    """The fingerprints of what shard `shard` of `spec` reads, or the reason it cannot run."""
    inputs = {}
    for up in spec.upstream:
        entry = manifest["stages"].get(up, {}).get(shard_name(shard))
        if not store.intact(entry):
            return {}, f"input {up}/{shard_name(shard)} is not done or its file changed"
        inputs[up] = entry["fingerprint"]  # type: ignore[index]
    for build_input in spec.build_inputs:
        entry = manifest.get(build_input.name)
        if not store.intact(entry):
            return {}, f"the build-wide {build_input.name} pass is not done or its file changed"
        inputs[build_input.name] = entry["fingerprint"]  # type: ignore[index]
    return inputs, None


def build_input_sources(
    config: BuildConfig, store: BuildStore, manifest: Manifest, spec: BuildInput
) -> tuple[Inputs, Inputs, str | None]:
    """What a build-wide input is computed from: the fingerprints of every shard of the stage it
    reads and of the earlier builds' shards; or the reason it cannot be computed yet."""
    shards = manifest["stages"].get(spec.reads, {})
    inputs = {}
    for shard in range(config.shards):
        entry = shards.get(shard_name(shard))
        if not store.intact(entry):
            return {}, {}, f"{spec.reads}/{shard_name(shard)} is not done"
        inputs[shard_name(shard)] = entry["fingerprint"]  # type: ignore[index]
    earlier = {url: Folder(url).fingerprint() for url in spec.earlier(config, store.output_dir)}
    return inputs, earlier, None


def progress_units(manifest: Manifest, spec: Stage, shards: int) -> tuple[dict[int, int], str]:
    """What a stage's progress counts, known before it starts: per shard, the rows the last stage
    it reads wrote there ("rows"); for a stage that reads none, or whose inputs are all empty,
    one per shard ("shards")."""
    if spec.upstream:
        written = manifest["stages"].get(spec.upstream[-1], {})
        rows = {s: int(written.get(shard_name(s), {}).get("rows_out", 0)) for s in range(shards)}
        if sum(rows.values()):
            return rows, "rows"
    return dict.fromkeys(range(shards), 1), "shards"


def stale(store: BuildStore, result: dict[str, Any]) -> str | None:
    """Why a shard's result kept by an executor's cache must be computed again (its file is gone
    or altered, or rows of it failed), or None when it stands."""
    if not store.intact(result):
        return "cached output missing or altered; recomputing"
    if result.get("rows_failed"):
        return "computing again the rows that failed last time"
    return None
