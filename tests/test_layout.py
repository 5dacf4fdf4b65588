"""The package's layout: its import graph has no cycle, and no private name crosses a
module boundary (issue 13). Both read the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "retrieval"

#: private imports that the search restructure (issue 13, ``retrieval/search/``) removes;
#: an entry here that no longer occurs is harmless, a new private import fails the test
BEING_REMOVED: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = (name if is_package else name.rsplit(".", 1)[0]).split(".")
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any level of the file: a function-
    level import is an edge too). ``from pkg import sub`` is an edge to ``pkg.sub``."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _targets(node, name, path.name == "__init__.py")
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    edges.add(sub if sub in files else target)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_is_acyclic():
    graph = import_graph()
    assert "retrieval.index.reader" in graph["retrieval.index.builder"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def _private_imports():
    files = list(PACKAGE.rglob("*.py")) + list((ROOT / "scripts").glob("*.py")) \
        + list((ROOT / "tests").glob("*.py"))
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "")
                                                      .startswith("retrieval")):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        yield rel, a.name


def test_no_private_name_is_imported_across_modules():
    """``from x import _name`` between modules (package, scripts, tests). Private
    *modules* of a subpackage (``_version``, ``cli/_common``) are its own business."""
    found = sorted(set(_private_imports()) - BEING_REMOVED)
    assert found == [], found
