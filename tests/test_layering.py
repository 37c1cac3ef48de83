"""Imports flow one way: graph → resolvers → models. Checked on the source, statically."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
#: package → the project packages it must never import
FORBIDDEN = {"models": {"resolvers", "graph"}, "resolvers": {"graph"}}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package]) for path in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_models_know_nothing_of_strawberry_or_http():
    for path in (ROOT / "models").rglob("*.py"):
        assert not imported_packages(path) & {"strawberry", "starlette", "uvicorn", "httpx"}, path
    for path in (ROOT / "resolvers").rglob("*.py"):
        assert "strawberry" not in imported_packages(path), path
