"""Bad input through the real command, 45 cases: each is answered with one line naming the
problem, exit code 2 (the documented code for bad input), and a build written before is left
exactly as it was (every byte of every file under the output folder)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, config_dict, run_cli, stored_question, write_config

from raspberry.build_files.store import BuildStore
from raspberry.stages.sft.config import ExportConfig

Case = Callable[[Path, dict], list[str]]  # (tmp_path, config data) -> CLI arguments


def _build(tmp: Path, data: dict, *extra: str) -> list[str]:
    return ["build", "--config", str(write_config(tmp, data)), *extra]


def _raw_config(tmp: Path, text: str) -> list[str]:
    (tmp / "raw.yaml").write_text(text)
    return ["build", "--config", str(tmp / "raw.yaml")]


def _edit(change: Callable[[dict], None]) -> Case:
    def case(tmp: Path, data: dict) -> list[str]:
        change(data)
        return _build(tmp, data)

    return case


def _questions(**section) -> Case:
    return _edit(lambda d: d["questions"].update(section))


def _no_prompt_column(tmp: Path, data: dict) -> list[str]:
    pq.write_table(pa.Table.from_pylist([{"text": "Why is the sky blue?"}]), tmp / "q.parquet")
    data["questions"]["files"] = [{"path": str(tmp / "q.parquet")}]
    return _build(tmp, data)


def _unreadable_seed(tmp: Path, data: dict) -> list[str]:
    (tmp / "seed.jsonl").mkdir()  # a folder where the file should be
    data["questions"]["files"] = [{"path": str(tmp / "seed.jsonl")}]
    return _build(tmp, data)


def _bad_benchmark(tmp: Path, data: dict) -> list[str]:
    (tmp / "bench.json").write_text('{"eval_data": [{"question_id": 1, "prompt": "Hi?"}]}')
    return [
        "eval",
        "--config",
        str(write_config(tmp, data)),
        "--benchmark",
        str(tmp / "bench.json"),
    ]


def _status_of(build: str) -> Case:
    return lambda tmp, data: ["status", build, "--output-dir", str(tmp / "builds")]


def _corrupt_manifest(tmp: Path, data: dict) -> list[str]:
    (tmp / "builds" / "broken").mkdir(parents=True)
    (tmp / "builds" / "broken" / "manifest.json").write_text("{not json")
    return _status_of("broken")(tmp, data)


def _unknown_storage(tmp: Path, data: dict) -> list[str]:
    return ["status", "old", "--output-dir", "nope://bucket/builds"]


def _corrupt_record(tmp: Path, data: dict) -> list[str]:
    (tmp / "builds" / "cut" / "records").mkdir(parents=True)
    (tmp / "builds" / "cut" / "records" / "build.json").write_text('{"build_id": "cu')
    return _status_of("cut")(tmp, data)


def _other_builds_manifest(tmp: Path, data: dict) -> list[str]:
    shutil.copytree(tmp / "builds" / "old" / "records", tmp / "builds" / "copy" / "records")
    return _status_of("copy")(tmp, data)


def _corrupt_shard(tmp: Path, data: dict) -> list[str]:
    # A build whose SFT shard is garbage: exporting it must say so, not crash.
    store = BuildStore(tmp / "builds", "garbled")
    store.init({})
    store.record("export", ExportConfig().model_dump())
    store.files.write_bytes("sft/shard-00000.parquet", b"PAR1 this is not parquet")
    entry = {"state": "done", "path": "sft/shard-00000.parquet", "fingerprint": "x"}
    store.record_shard("sft", 0, entry)
    return ["export", "garbled", "--output-dir", str(tmp / "builds"), "--out", str(tmp / "x")]


def _prompt_not_utf8(tmp: Path, data: dict) -> list[str]:
    import shutil

    shutil.copytree(ROOT / "prompts", tmp / "prompts")
    (tmp / "prompts" / "judge.md").write_bytes(b"---\nid: judge\nversion: 1\n---\nCaf\xe9 {{x}}")
    data["prompts_dir"] = str(tmp / "prompts")
    return _build(tmp, data)


def _question_file(text: str) -> Case:
    def case(tmp: Path, data: dict) -> list[str]:
        (tmp / "q.jsonl").write_text(text)
        data["questions"]["files"] = [{"path": str(tmp / "q.jsonl")}]
        return _build(tmp, data)

    return case


def _export_to(where: Callable[[Path], Path]) -> Case:
    def case(tmp: Path, data: dict) -> list[str]:
        store = BuildStore(tmp / "builds", "done")
        store.init({})
        store.record("export", ExportConfig().model_dump())
        return ["export", "done", "--output-dir", str(tmp / "builds"), "--out", str(where(tmp))]

    return case


def _a_file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("x")
    return tmp / "a-file"


def _cache_at(make: Callable[[Path], None]) -> Case:
    def case(tmp: Path, data: dict) -> list[str]:
        make(tmp / "cache.sqlite")
        return _build(tmp, data)

    return case


def _manifest_without_fields(tmp: Path, data: dict) -> list[str]:
    (tmp / "builds" / "bare").mkdir(parents=True)
    (tmp / "builds" / "bare" / "manifest.json").write_text('{"build_id": "bare"}')
    return _status_of("bare")(tmp, data)


def _blank_key(tmp: Path, data: dict) -> list[str]:
    data["providers"]["claude"] = {"kind": "anthropic", "api_key_env": "RB_BLANK_KEY"}
    data["models"]["judge"]["provider"] = "claude"
    os.environ["RB_BLANK_KEY"] = "  \t"  # the test's env for this case only (see below)
    return _build(tmp, data)


_HELD: list[socket.socket] = []  # listening until the test process ends


def _port_in_use(tmp: Path, data: dict) -> list[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    _HELD.append(sock)
    return ["sim", "serve", "--port", str(sock.getsockname()[1])]


def _huge_config(tmp: Path, data: dict) -> list[str]:
    path = write_config(tmp, data)
    with path.open("a") as f:
        f.write(("# a comment line of a config grown far past its settings\n") * 40_000)
    return ["build", "--config", str(path)]


def _code_limits(limits: dict) -> Case:
    def case(tmp: Path, data: dict) -> list[str]:
        spec = {"kind": "code", "tests": "assert f() == 1", "limits": limits}
        (tmp / "q.jsonl").write_text(json.dumps({"question": "Write f.", "spec": json.dumps(spec)}))
        columns = {"verification": "spec", "answer": None}
        data["questions"]["files"] = [{"path": str(tmp / "q.jsonl"), "columns": columns}]
        return _build(tmp, data)

    return case


PASTED_KEY = "sk-ant-api03-Zq8vN2mK4pL7xR1tY6wB"

CASES: dict[str, tuple[Case, str]] = {
    "sim serve on a port in use": (_port_in_use, "Address already in use"),
    "config over the size bound": (_huge_config, "a config is at most 1 MiB"),
    "a key pasted where a variable name belongs": (
        _edit(lambda d: d["providers"]["sim_openai"].update(api_key_env=PASTED_KEY)),
        "'sk-a…' looks like a key",
    ),
    "a model without a price": (
        _edit(
            lambda d: (
                d["providers"].update(
                    vllm={"kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}
                ),
                d["models"]["rewriter"].update(provider="vllm", model="my-rewriter"),
            )
        ),
        "models.rewriter: model 'my-rewriter' has no price",
    ),
    "negative code limit": (_code_limits({"wall_s": -1}), "limits.wall_s must be above 0"),
    "zero code limit": (_code_limits({"memory_mb": 0}), "limits.memory_mb must be above 0"),
    "unknown code limit": (_code_limits({"gpu": 1}), "unknown limit 'gpu'"),
    "prompt file not UTF-8": (_prompt_not_utf8, "is not UTF-8 text"),
    "duplicate YAML key": (
        lambda t, d: _raw_config(t, "name: a\nname: b\n"),
        "duplicate key 'name'",
    ),
    "empty question file": (_question_file(""), "has no usable question (it is empty)"),
    "question file without a valid row": (
        _question_file('{"question": ""}\nnot json\n'),
        "has no usable question",
    ),
    "export --out to a file": (_export_to(_a_file), "is a file"),
    "export --out under a file": (_export_to(lambda t: _a_file(t) / "sub"), "cannot make"),
    "output_dir under a file": (
        lambda t, d: _build(t, {**d, "output_dir": str(_a_file(t) / "builds")}),
        "is a file, not a folder",
    ),
    "corrupt request cache": (
        _cache_at(lambda p: p.write_bytes(b"this is not a database" * 100)),
        "cannot be used as the request cache",
    ),
    "folder at cache_path": (_cache_at(lambda p: p.mkdir()), "cannot be used as the request cache"),
    "manifest without its fields": (_manifest_without_fields, "lacks"),
    "--stages naming no stage": (lambda t, d: _build(t, d, "--stages", ","), "names no stage"),
    "blank API key": (_blank_key, "is set but empty"),
    "--stages whose inputs do not exist": (
        lambda t, d: _build(t, d, "--build-id", "fresh", "--stages", "verdicts,sft"),
        "reads questions, which build 'fresh' has not done",
    ),
    "malformed YAML": (lambda t, d: _raw_config(t, "name: [unclosed\n"), "invalid YAML at line"),
    "not a mapping": (lambda t, d: _raw_config(t, "- just\n- a list\n"), "must be a YAML mapping"),
    "missing config file": (
        lambda t, d: ["build", "--config", str(t / "nope.yaml")],
        "config file not found",
    ),
    "unknown key": (
        _edit(lambda d: d["dialogues"].update(max_turn=3)),
        "unknown key 'dialogues.max_turn'",
    ),
    "wrong type": (_questions(shards="four"), "questions.shards"),
    "negative count": (
        _edit(lambda d: d["questions"]["reasoning_gym"][0].update(count=-5)),
        "count",
    ),
    "key written in the YAML": (
        _edit(lambda d: d["providers"]["sim_openai"].update(api_key="sk-x")),
        "looks like a secret",
    ),
    "unknown model role": (
        _edit(lambda d: d["models"].update(critic=d["models"]["judge"])),
        "models.critic",
    ),
    "role on an unknown provider": (
        _edit(lambda d: d["models"]["judge"].update(provider="nobody")),
        "'nobody' is not one of providers",
    ),
    "role the build needs is missing": (
        _edit(lambda d: d["models"].pop("rewriter")),
        "['rewriter']",
    ),
    "missing prompt file": (
        _edit(lambda d: d["dialogues"].update(teacher_prompt="teacher_v9")),
        "prompt file not found",
    ),
    "missing API key": (
        _edit(
            lambda d: (
                d["providers"].update(claude={"kind": "anthropic"}),
                d["models"]["judge"].update(provider="claude"),
            )
        ),
        "ANTHROPIC_API_KEY",
    ),
    "unknown reasoning-gym task": (
        _edit(
            lambda d: d["questions"]["reasoning_gym"].append({"task": "no_such_task", "count": 1})
        ),
        "no_such_task",
    ),
    "missing seed file": (_questions(files=[{"path": "nope.jsonl"}]), "question file not found"),
    "unreadable seed file": (_unreadable_seed, "cannot read question file"),
    "seed file without its prompt column": (_no_prompt_column, "has no column 'question'"),
    "missing benchmark file": (
        _questions(filters={"decontamination": {"benchmarks": ["gone.json"]}}),
        "benchmark file not found",
    ),
    "malformed benchmark file": (_bad_benchmark, "a letter A-F is required"),
    "earlier build that does not exist": (
        _questions(filters={"near_duplicates": {"earlier_builds": ["lastnight"]}}),
        "'lastnight' has no question shards",
    ),
    "unknown stage": (lambda t, d: _build(t, d, "--stages", "dialogs"), "unknown stage"),
    "status of an unknown build": (_status_of("nope"), "no build 'nope'"),
    "corrupt manifest": (_corrupt_manifest, "corrupt record"),
    "corrupt record": (_corrupt_record, "corrupt record"),
    "output folder on an unknown file system": (_unknown_storage, "no file system for it"),
    "records of another build": (_other_builds_manifest, "belong to build 'old'"),
    "corrupt Parquet shard": (_corrupt_shard, "corrupt or unreadable"),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_written_is_touched(tmp_path, name):
    out = tmp_path / "builds"
    q = stored_question()
    store = BuildStore(out, "old")
    store.init({})
    store.write_shard("questions", 0, [q], type(q))
    before = _snapshot(out / "old")
    case, expected = CASES[name]
    args = case(tmp_path, config_dict(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    os.environ.pop("RB_BLANK_KEY", None)
    proc: subprocess.CompletedProcess = run_cli(*args, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert expected in lines[0], lines[0]
    assert PASTED_KEY[4:] not in proc.stdout + proc.stderr
    assert _snapshot(out / "old") == before
    assert not (ROOT / "nope.yaml").exists()
