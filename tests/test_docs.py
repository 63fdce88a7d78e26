"""The docs name files that exist: every repository path in README.md and docs/*.md (a path
under one of the project's folders, or under a package of raspberry/ as the docs abbreviate it)
is checked against the tree, so a moved or renamed file cannot leave the docs pointing at
nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("raspberry", "app", "flows", "tasks", "sim", "tests", "benchmarks", "configs", "prompts",
       "docs", "deploy", ".ci")  # fmt: skip
# Packages the docs abbreviate ("llm/cache.py", "questions/dedup.py"), by where they are.
PACKAGES = {
    p.name: p.relative_to(ROOT).as_posix()
    for folder in (ROOT / "raspberry", ROOT / "raspberry" / "stages")
    for p in folder.iterdir()
    if (p / "__init__.py").exists()
}
# A path: folders and a file name with an extension, or a folder ending in "/".
PATH = re.compile(r"(?<![\w./-])((?:\.ci|[a-z_]+)/[\w./-]*[\w/])")
# Paths the docs name that are not the project's: a user's own file, one named as absent.
NOT_OURS = {"configs/mine.yaml", "configs/nightly.yaml"}


def named_paths(text: str) -> set[str]:
    found = set()
    for path in PATH.findall(text):
        path = path.split("::")[0]
        first = path.split("/")[0]
        if first in TOP and path not in NOT_OURS:
            found.add(path)
        elif first in PACKAGES and path.endswith(".py"):  # "sft/shard-00001" is a build's
            found.add(f"{PACKAGES[first]}/{path[len(first) + 1 :]}")
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_the_docs_name_exists(doc):
    missing = sorted(p for p in named_paths(doc.read_text()) if not (ROOT / p).exists())
    assert not missing, f"{doc.name} names paths that are not in the tree: {missing}"


def test_the_path_finder_finds_what_the_docs_write():
    text = "see `raspberry/llm/books.py`, llm/cache.py and tests/reliability/ (not exports/x.jsonl)"
    assert named_paths(text) == {
        "raspberry/llm/books.py", "raspberry/llm/cache.py", "tests/reliability/"
    }  # fmt: skip


def test_a_reader_follows_one_question_from_source_to_sft_row_in_twelve_files():
    text = (ROOT / "docs" / "architecture.md").read_text()
    walk = text.split("## One question, from source to SFT row")[1].split("\n\n|")[1]
    files = {
        re.search(r"`([^`]+\.py)`", row).group(1) for row in walk.split("\n\n")[0].splitlines()[2:]
    }
    assert 8 <= len(files) <= 12 and all((ROOT / f).exists() for f in files), files
