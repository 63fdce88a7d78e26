"""The Python API: what `import raspberry` offers a notebook or a script, over the same calls as
the CLI (`raspberry.build`, `raspberry.load_build`, `raspberry.check`).

    import raspberry
    build = raspberry.build("configs/demo.yaml", build_id="demo-nb", stages=["candidates"])
    build.state, build.summary["stages"]["candidates"]["rows_out"]
    questions = build.dataset("candidates")  # a datasets.Dataset

Running a build or a training needs an executor, which the core does not import: the package's
own Prefect layer registers one as the `raspberry.runners` entry point (app/api.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import posixpath
import tempfile
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import yaml

from raspberry.build_files.folder import Folder
from raspberry.build_files.store import BuildStore, shard_name
from raspberry.errors import RaspberryError
from raspberry.report.summary import build_summary, summary_lines
from raspberry.report.tables import build_facts, build_state
from raspberry.stages import registry
from raspberry.stages.config import BuildConfig
from raspberry.stages.sft.export import FORMATS

RUNNERS = "raspberry.runners"


class Runner(Protocol):
    """What runs builds and trainings for the API (and the CLI): the Prefect flows."""

    def build(
        self,
        config_path: str,
        build_id: str | None,
        stages: list[str],
        output_dir: str | Path | None,
        log_file: Path | None,
    ) -> tuple[str, str, dict[str, Any]]: ...

    def train(
        self, output_dir: str, build_id: str, config_path: str | None, name: str | None
    ) -> dict[str, Any]: ...


def runner() -> Runner:
    """The installed runner (the `raspberry.runners` entry point)."""
    found = list(entry_points(group=RUNNERS))
    if not found:
        raise RaspberryError(
            f"no build runner is installed (entry point group {RUNNERS!r}); install the "
            "raspberry package itself, not its folder alone"
        )
    return found[0].load()


class Build:
    """A build on disk: its state, summary, rows per stage, and its exports."""

    def __init__(self, output_dir: str | Path, build_id: str):
        self.store = BuildStore(output_dir, build_id)
        self.output_dir, self.build_id = self.store.output_dir, self.store.build_id
        self.store.manifest()  # one clear error if there is none

    def __repr__(self) -> str:
        return f"Build({self.build_id!r}, {self.state}, {self.store.files.url()})"

    @property
    def manifest(self) -> dict[str, Any]:
        return self.store.manifest()

    @property
    def state(self) -> str:
        """completed, failed or incomplete."""
        return build_state(self.manifest)

    @property
    def summary(self) -> dict[str, Any]:
        """The same summary as `raspberry status --json`."""
        return build_summary(self.manifest, None)

    def stage(self, name: str) -> list[Any]:
        """Every row of a stage's done shards, as its row type (Question, Dialogue, ...)."""
        spec = registry.stage(name)
        shards = self.manifest["stages"].get(name, {})
        return [
            row
            for index in range(len(shards))
            if shards.get(shard_name(index), {}).get("state") == "done"
            for row in self.store.read_shard(name, index, spec.row_type)
        ]

    def dataset(self, name: str) -> Any:
        """A stage's rows as a `datasets.Dataset` (needs the `datasets` package)."""
        try:
            import datasets
        except ModuleNotFoundError:
            raise RaspberryError(
                "Build.dataset needs the `datasets` package: pip install 'raspberry[datasets]' "
                "(or pip install datasets)"
            ) from None

        return datasets.Dataset.from_list([row.model_dump() for row in self.stage(name)])

    def train(self, config: str | Path | None = None, name: str | None = None) -> dict[str, Any]:
        """Fine-tune the config's `train:` model on this build (the config its last run used
        unless given); return what the training measured (docs/training.md)."""
        return runner().train(self.output_dir, self.build_id, str(config) if config else None, name)

    def export(self, out: str | Path, formats: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Write the export files again into `out`, with the settings the build recorded."""
        return export_build(self.output_dir, self.build_id, out, formats)

    def push(
        self,
        repo: str,
        *,
        private: bool = False,
        revision: str | None = None,
        token: str | None = None,
    ) -> str:
        """Upload the exports to a Hugging Face dataset repo (token: HF_TOKEN unless given)."""
        from raspberry.hub import push_build

        return push_build(
            self.output_dir, self.build_id, repo, token, private=private, revision=revision
        )


def build(
    config: str | Path | BuildConfig,
    *,
    build_id: str | None = None,
    stages: list[str] | None = None,
    output_dir: str | Path | None = None,
    quiet: bool = True,
) -> Build:
    """Run a build (all stages by default) and return it; a failed shard or row does not raise:
    look at `.state` and `.summary`. Bad input raises a RaspberryError saying what to fix.
    quiet: Prefect's log lines go to a file (named at the end) instead of the notebook or the
    terminal, and the summary is printed at the end; the progress bars show either way (on a
    terminal, and in Jupyter)."""
    if isinstance(config, BuildConfig):
        config = _write_config(config, output_dir or config.output_dir)
    names = registry.selected(",".join(stages) if stages else None)
    log_file = None
    if quiet:
        made = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        log_file = Path(tempfile.gettempdir()) / "raspberry" / f"{build_id or 'build'}-{made}.log"
    out, build_id, manifest = runner().build(str(config), build_id, names, output_dir, log_file)
    if quiet:
        run = (manifest.get("runs") or [None])[-1]
        for line in summary_lines(build_summary(manifest, run), manifest, "this run"):
            print(line)
        for short in (run or {}).get("shortfalls", []):
            print(f"fell short: {short}")
        print(f"Prefect's log of this run: {log_file}")
    return Build(out, build_id)


def load_build(path: str | Path) -> Build:
    """A build from its folder, <output_dir>/<build_id> (a path or an fsspec URL)."""
    url = Folder(path).url()
    return Build(posixpath.dirname(url), posixpath.basename(url))


def _write_config(config: BuildConfig, output_dir: str | Path) -> str:
    """A config object as the YAML file the flow reads (prompts_dir made absolute)."""
    data = config.model_dump(mode="json", exclude={"source"})
    data["prompts_dir"] = str(config.prompts_path())
    # Beside the builds when they are on this disk, else beside the request cache.
    folder = Folder(output_dir).local_path("_configs") or Path(config.gateway.cache_path).parent
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False)
    path = folder / f"{config.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path.resolve())


def export_build(
    output_dir: str, build_id: str, out: str | Path, formats: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Write a build's export files again into `out`, with the settings the build recorded
    (`raspberry export` and `Build.export`); return their paths and the export report."""
    store = BuildStore(output_dir, build_id)
    manifest = store.manifest()
    spec = registry.exporting()
    if "export" not in manifest:
        raise RaspberryError(
            f"build '{build_id}' has no export settings: its {spec.name} stage has not run; "
            "run `raspberry build` first"
        )
    folder = Folder(out)
    if (local := folder.local_path()) is not None:
        if local.exists() and not local.is_dir():
            raise RaspberryError(f"--out {local} is a file; give a folder for the export files")
        try:
            local.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RaspberryError(
                f"--out {local}: cannot make the folder ({exc.strerror})"
            ) from None
        if not os.access(local, os.W_OK | os.X_OK):
            raise RaspberryError(f"--out {local} is not writable; give another folder")
    shards = manifest["stages"].get(spec.name, {}).values()
    if not any(entry["state"] == "done" for entry in shards):
        raise RaspberryError(f"build '{build_id}' has no completed {spec.name} shard to export")
    return spec.exports.write(  # type: ignore[union-attr]
        store, manifest["export"], folder, build_facts(manifest), formats or FORMATS
    )
