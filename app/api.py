"""The Python API: what `import raspberry` offers a notebook or a script, over the same calls as
the CLI (`raspberry.build`, `raspberry.load_build`, `raspberry.check`).

    import raspberry
    build = raspberry.build("configs/demo.yaml", build_id="demo-nb", stages=["candidates"])
    build.state, build.summary["stages"]["candidates"]["rows_out"]
    questions = build.dataset("candidates")  # a datasets.Dataset
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import yaml
from raspberry_app.build import export_build, new_build
from raspberry_app.settings import parse_stages

from raspberry.errors import RaspberryError
from raspberry.report import build_state
from raspberry.stages import registry
from raspberry.stages.config import BuildConfig
from raspberry.storage import Folder
from raspberry.store import BuildStore, shard_name
from raspberry.summary import build_summary, summary_lines


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
        from raspberry_app.train import train_build

        return train_build(self.output_dir, self.build_id, str(config) if config else None, name)

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
    names = parse_stages(",".join(stages) if stages else None)
    log_file = None
    if quiet:
        made = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        log_file = Path(tempfile.gettempdir()) / "raspberry" / f"{build_id or 'build'}-{made}.log"
    out, build_id, manifest = new_build(config, build_id, names, output_dir, log_file=log_file)
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
