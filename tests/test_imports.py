"""No runtime import cycle inside the package: each module's imports at import time (not
those under ``if TYPE_CHECKING:`` nor inside functions) form a graph without cycles, so
any module can be imported first and a new import cannot half-initialise another module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import arena_async

PACKAGE_ROOT = Path(arena_async.__file__).resolve().parent


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when imported: at top level, in ``if`` (but not
    ``if TYPE_CHECKING:``) and ``try`` blocks; not in functions or classes."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking(node.test):
                yield from _runtime_imports(node.body)
            yield from _runtime_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody,
                          *(handler.body for handler in node.handlers)):
                yield from _runtime_imports(block)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports at import time."""
    package = root.name
    modules = {_module_name(root, path): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        parts = name.split(".")
        here = parts if path.name == "__init__.py" else parts[:-1]
        edges: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text()).body):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x`: x may be a module
                sub = f"{target}.{alias.name}"
                edges.add(sub if sub in modules else target)
        graph[name] = {e for e in edges
                       if e in modules and e != name and e.split(".")[0] == package}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_runtime_import_cycle() -> None:
    graph = import_graph(PACKAGE_ROOT)
    assert len(graph) > 50  # every module was read
    assert "arena_async._transport" in graph["arena_async.arena.client"]
    assert cycles(graph) == []


def test_a_cycle_is_found_and_type_checking_imports_are_not_one(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from .sub import b\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "b.py").write_text("from .. import c\n")
    (root / "c.py").write_text("import pkg.a\n")
    (root / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from . import e\n")
    (root / "e.py").write_text("from . import d\n\ndef f():\n    from . import a\n")
    assert cycles(import_graph(root)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
