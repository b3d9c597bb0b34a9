"""The import graph of the project's packages: no cycle, and only the composition root builds
the service.

Every `import` statement counts, wherever it is: at the top, inside a function (a late import
is still a dependency) and under `if TYPE_CHECKING:` (a cycle there is a cycle in the design,
and the first `typing.get_type_hints` turns it into one at run time). Read with ast: nothing is
imported to check it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "gateway", "drivers", "prepay", "storage", "uplink", "board")
SERVICE = "gateway.app.service"
# The composition root: the commands that run the service, and the demo that runs one.
MAY_BUILD_THE_SERVICE = ("gateway.cli.", "gateway.demo.")
# Imports allowed to close a cycle, each with the move that would remove it: (importing module
# or package prefix, imported module). Empty now; the test fails on any cycle, and on a listed
# import that no longer closes one: the list only shrinks.
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(name: str, tree: ast.AST, is_package: bool) -> Iterator[str]:
    """Dotted names an import statement may load (a module, or a name inside one)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[:len(here) - node.level + 1]
                base = ".".join([*here, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = {owner(d) for d in _imported(name, tree, path.name == "__init__.py")}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(sorted(graph[nxt]))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return found


def _matches(edge: tuple[str, str], importer: str, imported: str) -> bool:
    prefix, target = edge
    return imported == target and (importer == prefix or (prefix.endswith(".")
                                                          and importer.startswith(prefix)))


def _without(graph: dict[str, set[str]], edges: list[tuple[str, str]]) -> dict[str, set[str]]:
    return {m: {d for d in deps if not any(_matches(e, m, d) for e in edges)}
            for m, deps in graph.items()}


def test_no_import_cycle() -> None:
    graph = _graph()
    known = list(KNOWN_BACK_EDGES)
    cycles = [sorted(c) for c in _cycles(_without(graph, known))]
    assert not cycles, f"import cycles: {cycles}"
    for edge in known:
        others = [e for e in known if e != edge]
        assert _cycles(_without(graph, others)), \
            f"{edge} no longer closes an import cycle: take it off KNOWN_BACK_EDGES"


def test_only_the_composition_root_imports_the_service() -> None:
    graph = _graph()
    importers = sorted(m for m, deps in graph.items() if SERVICE in deps
                       and not m.startswith(MAY_BUILD_THE_SERVICE))
    assert not importers, f"{importers} import {SERVICE}: hand them ports instead"


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]


def test_late_and_type_checking_imports_count() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a.b import C\n"
              "def f():\n    import d.e\n    from . import sibling\n")
    found = set(_imported("pkg.mod", ast.parse(source), is_package=False))
    assert {"a.b", "d.e", "pkg.sibling"} <= found
