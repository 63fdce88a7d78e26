"""What a stage is: the one description everything else about it is derived from.

A `Stage` names its row type (the Arrow schema comes from it), the stages whose shard i its shard
i reads, build-wide inputs it also reads (computed once over a whole upstream stage), the config
sections and prompts that shape its output, the roles it asks, the async function that computes
one shard, and how its report is summed, summarised and shown. Executors (the Prefect flow) and
reports read the registry of specs; they never name a stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from raspberry.build_files.manifest import Manifest
from raspberry.build_files.records import Row
from raspberry.build_files.store import BuildStore
from raspberry.digests import file_digest
from raspberry.figures import Block, Sample, merge
from raspberry.llm import Gateway
from raspberry.llm.config import Transport
from raspberry.prompts import Prompt, load_prompt
from raspberry.stages.config import BuildConfig
from raspberry.stages.estimate import Context, Line

Stats = dict[str, Any]


@dataclass(frozen=True)
class BuildContext:
    """What a build-wide input's computation may know besides the shards it reads."""

    config: BuildConfig
    sim_url: str | None
    build_id: str | None

    def gateway(self, transport: Transport | None = None, converses: bool = False) -> Gateway:
        """The build's gateway. `transport`: the stage's own choice; else gateway.transport
        "auto" batches the requests of a stage that does not converse (one whose requests
        each wait on an earlier answer, like a dialogue's turns)."""
        if transport is None:
            auto = self.config.gateway.transport == "auto" and not converses
            transport = "batch" if auto else "direct"
        return Gateway(self.config.llm, self.sim_url, build_id=self.build_id, transport=transport)


@dataclass(frozen=True)
class ShardContext(BuildContext):
    """What a shard's computation may know besides its input rows."""

    shard: int
    key: str  # the stage key: its config and prompts, hashed


@dataclass(frozen=True)
class BuildInput:
    """A table computed once per build from all shards of one stage (and earlier builds), that
    each shard of the stage that declares it reads its part of (e.g. the duplicates table)."""

    name: str
    reads: str  # the stage whose shards it is computed from
    # (context, that stage's shard URLs, earlier builds' shard URLs) -> rows of the table
    compute: Callable[[BuildContext, list[str], list[str]], list[dict[str, Any]]]
    schema: pa.Schema  # of the table, stored as <build>/<name>.parquet
    read: Callable[[pa.Table, int], Any]  # (the table, shard) -> what that shard's compute gets
    # (config, output_dir) -> earlier builds' shard URLs that also enter it
    earlier: Callable[[BuildConfig, str], list[str]] = lambda config, output_dir: []
    # rows of the table -> what its manifest entry and the run log say of it
    summarise: Callable[[list[dict[str, Any]]], Stats] = lambda rows: {"rows": len(rows)}


@dataclass(frozen=True)
class Exports:
    """The files a build ends with, written from a stage's rows once the stage has run."""

    settings: Callable[[BuildConfig], dict[str, Any]]  # recorded in the manifest
    # (build store, settings, folder to write, the build's facts, formats or None)
    # -> {"paths", "report"}
    write: Callable[..., dict[str, Any]]


def _no_prompts(config: BuildConfig) -> dict[str, tuple[str, set[str]]]:
    return {}


def _no_roles(config: BuildConfig) -> list[str]:
    return []


def _same(report: Stats) -> Stats:
    return report


def _no_lines(report: Stats) -> list[str]:
    return []


@dataclass(frozen=True)
class Stage:
    name: str
    row_type: type[Row]
    # compute(ctx, *rows of each upstream stage, *each build input's part) -> (rows, stats)
    compute: Callable[..., Awaitable[tuple[list[Row], Stats]]]
    # What it will ask, per role, before anything is sent (`raspberry estimate`): required, so
    # that a stage cannot be registered and then estimated at $0 without a word.
    estimate: Callable[[Context], list[Line]]
    upstream: tuple[str, ...] = ()
    build_inputs: tuple[BuildInput, ...] = ()
    sections: tuple[str, ...] = ()  # config sections that shape its output
    # config -> {prompt key: (prompt file name, its placeholders)}
    prompts: Callable[[BuildConfig], dict[str, tuple[str, set[str]]]] = _no_prompts
    roles: Callable[[BuildConfig], list[str]] = _no_roles
    # Checks before anything runs: (config, output_dir) -> None or a RaspberryError.
    check: Callable[[BuildConfig, str], None] | None = None
    funnel: str = ""  # how its rows_out reads in the funnel ("accepted", "SFT rows")
    preview: tuple[str, ...] = ()  # columns of its rows shown in previews
    accepted: tuple[str, Any] | None = None  # (column, value) of the rows that count as kept
    # (column, title, of accepted rows only) of the length its rows plot in the build report
    length: tuple[str, str, bool] | None = None
    summarise: Callable[[Stats], Stats] = _same  # derived figures of its summed report
    lines: Callable[[Stats], list[str]] = _no_lines  # what the CLI summary says of it
    # report -> sections of the build report: (heading, charts, tables and notes)
    charts: Callable[[Stats], list[tuple[str, list[Block]]]] = lambda report: []
    # (store, manifest) -> sample rows the build report shows, with what they came from
    samples: Callable[[BuildStore, Manifest], list[Sample]] | None = None
    exports: Exports | None = None  # the build's export files, written after it ran
    # config -> the files it names that this stage reads (question files, benchmark files):
    # their contents enter its key, so an edited file is never served from the cache.
    files: Callable[[BuildConfig], list[Path]] = lambda config: []

    async def run(self, ctx: ShardContext, *inputs: Any) -> tuple[list[Row], Stats]:
        """One shard: its rows (their lineage naming this stage) and its stats."""
        rows, stats = await self.compute(ctx, *inputs)
        for row in rows:
            if lineage := getattr(row, "lineage", None):
                lineage.stage = self.name
        return rows, stats

    def report(self, manifest: Manifest) -> Stats:
        """Its done shards' reports merged, with their drop reasons, and its derived figures."""
        done = [e for e in manifest["stages"].get(self.name, {}).values() if e["state"] == "done"]
        report = merge([e.get("report", {}) for e in done])
        if drops := merge([e.get("drops", {}) for e in done]):
            report["drops"] = drops
        return self.summarise(report)

    def reads(self) -> set[str]:
        """Every stage it reads, shard by shard or through a build-wide input."""
        return {*self.upstream, *(i.reads for i in self.build_inputs)}

    def load_prompts(self, config: BuildConfig) -> dict[str, Prompt]:
        """Its prompts, loaded and checked; a missing or malformed file is a ConfigError."""
        folder = config.prompts_path()
        return {
            key: load_prompt(folder, name, placeholders)
            for key, (name, placeholders) in self.prompts(config).items()
        }

    def input_files(self, config: BuildConfig) -> dict[str, str]:
        """The files it reads, by path, with a digest of their contents."""
        return {str(path): file_digest(path) for path in self.files(config)}

    def key(self, config: BuildConfig) -> str:
        """What its output depends on: its config sections and models, its prompts' texts and
        the contents of the files it reads."""
        data = config.model_dump(mode="json")
        payload = {k: data[k] for k in self.sections}
        # How requests travel does not change what they return (both transports share the cache).
        for section in payload.values():
            if isinstance(section, dict):
                section.pop("transport", None)
        sections = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        refs = sorted(p.fingerprint for p in self.load_prompts(config).values())
        files = sorted(self.input_files(config).values())
        # A stage that reads no file keeps the key it always had (a warm cache stays warm).
        text = f"{sections}|{refs}" + (f"|{files}" if files else "")
        return hashlib.sha256(text.encode()).hexdigest()[:16]
