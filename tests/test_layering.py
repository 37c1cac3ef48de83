"""The shape of the source, checked statically (ast): imports flow one way, graph → resolvers →
models; no import cycle among the project's modules; no module over MAX_LINES lines.

Every import statement counts — at module level, under ``TYPE_CHECKING`` and inside functions —
since each one is a dependency a reader has to follow; ``from a import b`` counts as importing
``a.b`` where that is a module. A failure lists each cycle as a path of imports, each upward
import, each long module with its length.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("graph", "resolvers", "models")
#: package → the project packages it must never import
FORBIDDEN = {"models": {"resolvers", "graph"}, "resolvers": {"graph"}}
MAX_LINES = 400
#: generated or declarative code, exempt from the size limit
SIZE_EXEMPT = ("models/db/migrations/",)


@cache
def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imported_names(module: str) -> set[str]:
    """The absolute names the import statements of ``module`` name."""
    path = modules()[module]
    return names_imported(tree(path), module if path.name == "__init__.py" else module.rpartition(".")[0])


def names_imported(source: ast.Module, package: str) -> set[str]:
    """The absolute names every import statement in ``source`` names, wherever it stands;
    ``from a import b`` names both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    names = set()
    for node in ast.walk(source):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return names


def own_module(name: str) -> str | None:
    """The project module ``name`` is or lives in, or None for other packages."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module → the project modules it imports."""
    graph = {}
    for module in modules():
        targets = {own_module(name) for name in imported_names(module)}
        graph[module] = frozenset(t for t in targets if t is not None and t != module)
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """One cycle (a closed path of imports) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iteratively
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_closed_path(graph, group) for group in groups]


def _closed_path(graph: dict[str, frozenset[str]], group: set[str]) -> list[str]:
    """A shortest path of imports from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & group):
                if successor == start:
                    return [*paths[node], start]
                if successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def layer(module: str) -> str:
    return module.split(".")[0]


# --- the checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if layer(module) == package
        for target in targets
        if layer(target) in FORBIDDEN[package]
    )
    assert any(layer(m) == package for m in modules()), f"no modules found in {package}/"
    assert offenders == [], "upward imports:\n" + "\n".join(offenders)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_no_module_is_too_long():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in modules().values()}
    oversize = sorted(
        f"{path}: {n} lines (limit {MAX_LINES})"
        for path, n in lengths.items()
        if n > MAX_LINES and not path.startswith(SIZE_EXEMPT)
    )
    assert oversize == [], "modules over the limit:\n" + "\n".join(oversize)


def test_models_know_nothing_of_strawberry_or_http():
    outside = {"models": {"strawberry", "starlette", "uvicorn", "httpx"}, "resolvers": {"strawberry"}}
    offenders = sorted(
        f"{module} imports {name}"
        for module in modules()
        for name in imported_names(module)
        if name.split(".")[0] in outside.get(layer(module), ())
    )
    assert offenders == []


# --- the checks themselves catch what they are for ---------------------------------------------


def test_a_cycle_is_found_and_shown_as_a_path():
    graph = {
        "a.one": frozenset({"a.two"}),
        "a.two": frozenset({"a.three"}),
        "a.three": frozenset({"a.one", "a.four"}),
        "a.four": frozenset(),
        "b.x": frozenset({"b.y"}),
        "b.y": frozenset({"b.x"}),
    }
    assert sorted(cycles(graph)) == [["a.one", "a.two", "a.three", "a.one"], ["b.x", "b.y", "b.x"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


EVERY_KIND = """
import graph.server.app
from typing import TYPE_CHECKING
from resolvers import hooks
from . import sibling
from ..verbs.ticket import escalate

if TYPE_CHECKING:
    from models.event import Event


def late():
    from resolvers.work import Work

    async def inner():
        import models.db.plain
"""


def test_every_kind_of_import_statement_counts():
    names = names_imported(ast.parse(EVERY_KIND), "resolvers.pkg")
    assert {
        "graph.server.app",
        "resolvers",
        "resolvers.hooks",
        "resolvers.pkg",
        "resolvers.pkg.sibling",
        "resolvers.verbs.ticket",
        "resolvers.verbs.ticket.escalate",
        "models.event",
        "models.event.Event",
        "resolvers.work",
        "resolvers.work.Work",
        "models.db.plain",
    } <= names
    # and on the real tree: resolvers/hooks.py names resolvers.work only under TYPE_CHECKING
    assert "resolvers.work" in import_graph()["resolvers.hooks"]
    assert own_module("resolvers.verbs.ticket.escalate") == "resolvers.verbs.ticket"
    assert own_module("sqlalchemy.orm") is None
