"""docs/extending.md, followed literally: its module adds a question source and a verification
kind, which a build finds in the process that registered them (the Python API) and, through
entry points, in the CLI's; the registries refuse what would fail later."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, config_dict, run_cli, write_config

from raspberry.build_files.records import Question
from raspberry.build_files.store import BuildStore
from raspberry.errors import ConfigError
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.registry import register_source
from raspberry.stages.candidates.sources import Source, SourceContext
from raspberry.stages.config import load_config
from raspberry.verify.checks import Verifier, register_verifier

DOC = (ROOT / "docs" / "extending.md").read_text()


def _module(tmp_path):
    """The doc's module, written where a user would keep it."""
    code = re.search(r"```python\n(.*?)```", DOC, re.S).group(1)
    (tmp_path / "riddles.py").write_text(code)
    asked = yaml.safe_load(re.search(r"```yaml\n(.*?)```", DOC, re.S).group(1))["questions"]
    data = config_dict(tmp_path)
    data["questions"] = {"seed": 1, **asked}
    return write_config(tmp_path, data)


def _riddles(output_dir, build_id) -> list[Question]:
    store = BuildStore(output_dir, build_id)
    return [q for shard in (0, 1) for q in store.read_shard("candidates", shard, Question)]


def test_the_documented_source_and_verifier_work_from_the_python_api(tmp_path):
    config = _module(tmp_path)
    script = f"""
import riddles, raspberry
build = raspberry.build({str(config)!r}, build_id="api", stages=["candidates"])
assert build.summary["stages"]["candidates"]["shards_done"] == 2, build.summary
spec = {{"kind": "pattern", "pattern": "(an? |the )?piano"}}
print(raspberry.check(spec, "It hums. Final answer: A piano.").passed,
      raspberry.check(spec, "Final answer: a violin").passed)
"""
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "True False"
    rows = _riddles(tmp_path / "builds", "api")
    assert sorted(q.reference_answer for q in rows) == ["bottle", "clock", "piano"]
    assert {q.source for q in rows} == {"riddles"}
    assert {json.loads(q.verification)["kind"] for q in rows} == {"pattern"}


def test_entry_points_bring_them_to_the_cli_and_bad_settings_are_one_line(tmp_path):
    config = _module(tmp_path)
    info = tmp_path / "riddles-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: riddles\nVersion: 0.1\n")
    points = re.search(r"```toml\n(.*?)```", DOC, re.S).group(1)
    (info / "entry_points.txt").write_text(
        "\n".join(line.strip() for line in points.splitlines()).replace("project.entry-points.", "")
        .replace('"', "")
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = run_cli("build", "--config", str(config), "--build-id", "cli", "--stages",
                   "candidates", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_riddles(tmp_path / "builds", "cli")) == 3

    data = yaml.safe_load(config.read_text())
    data["questions"]["sources"] = {"riddles": {"count": "many"}}
    config.write_text(yaml.safe_dump(data))
    proc = run_cli("build", "--config", str(config), "--build-id", "bad", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: questions.sources.riddles.count: Input should be a valid integer, unable to "
        "parse string as an integer"
    ]
    data["questions"]["sources"] = {"ridles": {}}
    config.write_text(yaml.safe_dump(data))
    proc = run_cli("build", "--config", str(config), "--build-id", "bad", env=env)
    assert proc.returncode == 2 and "questions.sources.ridles: no such source" in proc.stderr
    assert "registered: ['riddles']" in proc.stderr


async def _nothing(ctx: SourceContext) -> list[Question]:
    return []


def test_the_registries_refuse_what_would_fail_later():
    with pytest.raises(ValueError, match="already registered"):
        register_source(Source("files", _nothing, settings=QuestionsConfig))
    with pytest.raises(ValueError, match="must be `async def generate"):
        register_source(Source("mine", lambda ctx: [], settings=QuestionsConfig))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give its settings model"):
        register_source(Source("mine", _nothing))
    with pytest.raises(ValueError, match="give planned and estimate"):
        register_source(Source("mine", _nothing, settings=QuestionsConfig, role="teacher"))
    with pytest.raises(ValueError, match=r"answer types \['judge'\] are taken"):
        register_verifier(Verifier("mine", lambda spec, text: None, {"judge": dict}))  # type: ignore[arg-type, dict-item]
    with pytest.raises(ValueError, match=r"answer types \['mcq'\] are taken"):
        register_verifier(Verifier("mine", lambda spec, text: None, {"mcq": dict}))  # type: ignore[arg-type, dict-item]
    with pytest.raises(ValueError, match="lower case"):
        register_verifier(Verifier("My Kind", lambda spec, text: None))  # type: ignore[arg-type]


def test_an_unknown_answer_type_in_a_question_file_is_a_config_error(tmp_path):
    data = config_dict(tmp_path)
    data["questions"]["files"] = [{"path": "q.jsonl", "answer_type": "regex"}]
    with pytest.raises(ConfigError, match="unknown answer type 'regex'"):
        load_config(write_config(tmp_path, data))
