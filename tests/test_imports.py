"""Every module of ratelab and switch imports on its own, and no two modules import each other.

The import graph is read from the source with :mod:`ast`: imports that run when a module is
imported (top level, class bodies, ``try``/``if`` blocks), not those inside functions, under
``if TYPE_CHECKING:`` or under ``if __name__ == "__main__":``. Importing ``a.b.c`` runs ``a``
and ``a.b`` first, so it counts as importing them too, except for the importer's own packages
(they are already running when it is imported).
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ratelab", "switch")


def project_modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of :data:`PACKAGES`."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _skipped(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``__name__ == "__main__"``: a block that does not run on import."""
    if isinstance(test, ast.Name | ast.Attribute):
        name = test.id if isinstance(test, ast.Name) else test.attr
        return name == "TYPE_CHECKING"
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _import_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``body`` that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _skipped(node.test):
                yield from _import_statements(node.body)
            yield from _import_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse,
                          node.finalbody):
                yield from _import_statements(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _import_statements(node.body)


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
              known: set[str]) -> Iterator[str]:
    """The modules one import statement names (project modules or not).

    ``from package import submodule`` names the submodule (its package counts as a parent).
    """
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    yield from submodules
    if len(submodules) < len(node.names):  # a name defined in ``base`` itself
        yield base


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports when it is imported."""
    modules = project_modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        edges: set[str] = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _import_statements(tree.body):
            for target in _imported(module, is_package, node, known):
                parts = target.split(".")
                parents = {".".join(parts[:i]) for i in range(1, len(parts))}
                edges.update(t for t in parents - own if t in known)
                if target in known and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected group of modules in ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for group in groups:
        sub = {m: graph[m] & group for m in group}
        try:
            graphlib.TopologicalSorter(sub).prepare()
        except graphlib.CycleError as err:
            ring = list(reversed(err.args[1]))[:-1]
            start = ring.index(min(ring))  # the same cycle reads the same every time
            found.append([*ring[start:], *ring[:start], ring[start]])
    return sorted(found)


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert "ratelab.cli.output" in graph["ratelab.cli"]
    assert "ratelab.cli" in graph["ratelab.demo"]  # importing ratelab.cli.output runs it
    assert "ratelab" not in graph["ratelab.cli"]  # its own package is already running
    assert "ratelab.demo" not in graph["ratelab.cli.cdrs"]  # imported inside the command only
    assert "ratelab.rates" in graph["ratelab.warehouse"]  # from ratelab import rates
    assert "ratelab" not in graph["ratelab.warehouse"]


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("module", sorted(project_modules()))
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
