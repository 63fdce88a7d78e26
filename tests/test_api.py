"""The Python API as a user runs it: a script in a subprocess, against the session's Prefect
server, that builds, inspects, exports and reloads a build."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import ROOT, config_dict, write_config


def test_the_python_api_builds_inspects_exports_and_reloads(tmp_path, prefect_api):
    config = write_config(tmp_path, config_dict(tmp_path, per_task=2, shards=1))
    script = textwrap.dedent(f"""
        import json, os, raspberry
        from raspberry.stages.config import load_config

        build = raspberry.build({str(config)!r}, build_id="api")
        sft = build.stage("sft")
        dataset = build.dataset("sft")
        exported = build.export({str(tmp_path / "again")!r}, ("prompt_response",))
        again = raspberry.load_build(os.path.join({str(tmp_path / "builds")!r}, "api"))
        object_build = raspberry.build(load_config({str(config)!r}), build_id="api-object",
                                       stages=["candidates"])
        print(json.dumps({{
            "state": build.state,
            "rows_out": build.summary["stages"]["sft"]["rows_out"],
            "sft": len(sft), "dataset": dataset.num_rows, "columns": dataset.column_names,
            "exported": exported["report"]["rows_out"],
            "reloaded": [again.build_id, again.state, len(again.stage("sft"))],
            "object": [object_build.state, len(object_build.stage("candidates"))],
            "check": raspberry.check({{"kind": "exact", "reference": "4"}}, "4").passed,
        }}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["state"] == "completed" and got["rows_out"] == got["sft"] == got["dataset"] > 0
    assert {"id", "prompt", "response", "lineage"} <= set(got["columns"])
    assert got["exported"] == got["sft"] and got["reloaded"] == ["api", "completed", got["sft"]]
    # A stage-subset build of a config object: not complete, but its rows are there.
    assert got["object"][0] == "incomplete" and got["object"][1] == 10
    assert got["check"] is True
    # Quiet by default: no Prefect log line on the console, the summary and the log's path at
    # the end, and the log holds the run's lines.
    assert "Task run" not in proc.stderr and "Flow run" not in proc.stderr, proc.stderr[-2000:]
    assert "build api: completed (1 run)" in proc.stdout
    log = proc.stdout.split("Prefect's log of this run: ")[1].splitlines()[0]
    assert "Finished in state Completed" in open(log).read()


def test_build_dataset_names_the_extra_to_install(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["datasets"] = None  # as if it were not installed
        from raspberry.api import Build
        from raspberry.build_files.store import BuildStore
        BuildStore({str(tmp_path)!r}, "b").init({{}})
        Build({str(tmp_path)!r}, "b").dataset("sft")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert "pip install 'raspberry[datasets]'" in proc.stderr.strip().splitlines()[-1]
