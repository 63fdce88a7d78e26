"""The layers hold: the core (raspberry/) imports neither the simulator nor the application
layer above it (app/, flows/, tasks/), in a function or at the top of a module."""

import ast

import pytest
from conftest import ROOT

ABOVE = ("raspberry_sim", "raspberry_app", "raspberry_flows", "raspberry_tasks", "prefect")


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value  # a module named to import_module


@pytest.mark.parametrize("path", sorted((ROOT / "raspberry").rglob("*.py")), ids=str)
def test_the_core_imports_nothing_above_it(path):
    above = [name for name in _imports(path) if name.split(".")[0] in ABOVE]
    assert not above, f"{path.relative_to(ROOT)} imports {above}"
