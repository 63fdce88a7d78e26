"""Issue 18, as a user meets it: what the cache serves, who may write a build, what a bad
request costs. Builds run through the CLI against the session's Prefect server."""

import json
import shutil

import pyarrow.parquet as pq
from conftest import ROOT, config_dict, run_cli, write_config

from raspberry.store import shard_path


def _build(config, build_id="t", *extra):
    proc = run_cli("build", "--config", str(config), "--build-id", build_id, "--json", *extra)
    lines = proc.stdout.strip().splitlines()
    return proc, json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def test_editing_a_prompt_without_a_new_version_recomputes_what_it_shapes(tmp_path, prefect_api):
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    data = config_dict(tmp_path, per_task=2, shards=1, prompts_dir=str(prompts))
    config = write_config(tmp_path, data)
    proc, first = _build(config)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rewriter = prompts / "rewriter.md"
    rewriter.write_text(rewriter.read_text() + "\nKeep every number exactly as written.\n")
    proc, second = _build(config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = second["stages"]
    # What the rewriter prompt shapes is computed again and pays for new requests...
    assert stages["sft"]["shards_cached"] == 0 and stages["sft"]["requests_sent"] > 0
    # ...and nothing else is.
    for stage in ("candidates", "questions", "dialogues", "verdicts"):
        assert stages[stage]["shards_cached"] == 1 and stages[stage]["requests_sent"] == 0
    rows = pq.read_table(shard_path(tmp_path / "builds", "t", "sft", 0)).to_pylist()
    refs = {p for r in rows for p in r["lineage"]["prompts"] if p.startswith("rewriter@")}
    assert len(refs) == 1 and refs.pop().startswith("rewriter@1#")
