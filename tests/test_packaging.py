"""What users install: a built wheel in a fresh virtual environment, not the editable checkout.

The last round's wheel failed on its first import (a package missing from pyproject's list)
while every editable install worked. Here the wheel is built, installed into a new venv and
run from an unrelated folder: `raspberry init`, then the starter's offline demo."""

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib

from conftest import ROOT


def test_every_folder_of_the_core_is_a_listed_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])  # fmt: skip
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "raspberry").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_the_wheel_installs_and_runs_the_starter_demo_from_another_folder(tmp_path):
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    source = tmp_path / "source"  # a build writes build/ and *.egg-info beside the sources
    skip = (".venv", ".git", "data", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The dependencies come from this environment (installing them from the index takes
    # minutes); a .pth adds its site-packages without processing its .pth files, so the
    # editable checkout stays out and the project's own files come from the wheel alone.
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, str(next(wheels.glob("raspberry-*.whl")))], check=True)
    elsewhere.mkdir()
    raspberry = str(venv / "bin" / "raspberry")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [raspberry, *args], cwd=elsewhere, capture_output=True, text=True, timeout=600
        )

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import raspberry; print(raspberry.__file__)"],
        cwd=elsewhere, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(site)), where
    proc = run("init", "starter")
    assert proc.returncode == 0 and "raspberry build --config starter/raspberry.yaml" in proc.stdout
    proc = run("build", "--config", "starter/raspberry.yaml", "--build-id", "w", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed" and summary["stages"]["sft"]["rows_out"] > 300
    assert (elsewhere / "data" / "builds" / "w" / "exports" / "openai_chat.jsonl").exists()
    assert "License classifiers" not in proc.stderr
    proc = run("init", "starter")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "exists" in proc.stderr
