"""The shape of the source tree (issue 17): sizes, import circles, edges, private names.

Parsed with :mod:`ast`, nothing is imported. ``KNOWN`` lists the places that broke a rule when
the rule was written; it may only shrink: nothing new may join it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "stocktailor"
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 100
EDGES = ("workspace", "workflow", "api", "web", "cli", "demo", "migrations", "pipeline")
# Generated Alembic revisions are data (a schema), not code a newcomer reads.
EXEMPT = ("migrations/versions/",)

KNOWN: set[str] = {
    "file api.py:create_app",
    "file web/__init__.py:mount_dashboard",
    "file workflow/service.py",
    "file workflow/service.py:_prepare",
    "file workflow/service.py:publish_run",
    "file workflow/service.py:decide",
    "file workflow/service.py:bulk_decide",
    "cycle stocktailor.api stocktailor.web",
}


def _sources() -> Iterator[tuple[str, Path]]:
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if not rel.startswith(EXEMPT):
            yield rel, path


def _module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["stocktailor", *parts])


def _size_breaches() -> set[str]:
    out: set[str] = set()
    for rel, path in _sources():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_FILE_LINES:
            out.add(f"file {rel}")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    out.add(f"file {rel}:{node.name}")
    return out


def _imports() -> dict[str, set[str]]:
    """Module -> stocktailor modules it imports (anywhere in the file, lazy imports too)."""
    modules = {_module_name(rel): path for rel, path in _sources()}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                targets = [base]
                # ``from pkg import submodule`` imports the submodule too.
                targets += [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != mod:
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_parent_package(a: str, b: str) -> bool:
    """A package importing its own submodule (and that submodule importing a sibling) is the
    package's own wiring, not a circle between concepts."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_files_and_functions_stay_small() -> None:
    found = _size_breaches()
    new = sorted(found - KNOWN)
    assert not new, (
        f"over {MAX_FILE_LINES} lines per file or {MAX_FUNCTION_LINES} per function: {new}"
    )


def _circles() -> set[str]:
    graph = _imports()
    # Drop the edges between a package and its own submodules (see _is_parent_package).
    trimmed = {m: {t for t in ts if not _is_parent_package(m, t)} for m, ts in graph.items()}
    return {"cycle " + " ".join(c) for c in _cycles(trimmed)}


def test_no_import_circles() -> None:
    new = sorted(_circles() - KNOWN)
    assert not new, new


def test_core_never_imports_an_edge() -> None:
    graph = _imports()
    edge_prefixes = tuple(f"stocktailor.{e}" for e in EDGES)
    bad = sorted(
        f"{m} -> {t}"
        for m, ts in graph.items()
        if not m.startswith(edge_prefixes) and m != "stocktailor"
        for t in ts
        if t.startswith(edge_prefixes)
    )
    assert bad == []


def _concept(module: str) -> str:
    """``stocktailor.X`` of a module: the package (or top-level module) it belongs to."""
    return ".".join(module.split(".")[:2])


def _private_reaches() -> set[str]:
    """``from A import _name`` or ``from B._private import name`` where A/B is another concept
    (sibling modules of one package may share private helpers)."""
    modules = {_module_name(rel): path for rel, path in _sources()}
    out: set[str] = set()
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            src = node.module
            if not src.startswith("stocktailor") or _concept(src) == _concept(mod):
                continue
            if any(p.startswith("_") for p in src.split(".")):
                out.add(f"private {mod} <- {src}")
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    out.add(f"private {mod} <- {src}.{a.name}")
    return out


def test_no_private_name_crosses_modules() -> None:
    new = sorted(_private_reaches() - KNOWN)
    assert not new, new


def test_known_breaches_are_still_breaches() -> None:
    """A breach fixed leaves ``KNOWN`` in the same change, so the list only shrinks."""
    found = _size_breaches() | _circles() | _private_reaches()
    stale = sorted(KNOWN - found)
    assert not stale, f"fixed, remove from KNOWN: {stale}"
