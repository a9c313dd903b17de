"""The package's import graph has no circle.

Data flows one way through Berth (spec → plan → checks → target): a module that imports one that
imports it back is that flow climbing back up, and it was how a capacity check came to rebuild the
stack it checks. The graph is read from the source with ``ast`` over every module of ``berth/``,
``components/`` and ``policies/`` (named as installed: ``berth.components...``, ``berth.policies...``).
Every import counts, wherever it is: one moved into a function (or under ``if TYPE_CHECKING:``) only
hides a circle from Python at load time, not from the design.

Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` (and ``a``) unless the importer is itself
inside that package (it is then already being loaded), so those edges count too.
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path

from berth.record import ROOT

#: Installed package name → its folder in the repository (pyproject.toml's package-dir).
PACKAGES = {"berth": ROOT / "berth", "berth.components": ROOT / "components", "berth.policies": ROOT / "policies"}

#: Top-level names some modules import by: the repo layout, and the policy pack's own folder, which
#: ``policies/__main__.py`` puts on sys.path to import ``rules``.
ALIASES = {"components": "berth.components", "policies": "berth.policies", "rules": "berth.policies.rules"}

Edge = tuple[str, str, str]  # (importer, imported, "path:line")


def modules(packages: dict[str, Path] = PACKAGES) -> dict[str, Path]:
    """Module name → file, for every ``.py`` file of the packages."""
    out: dict[str, Path] = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _known(name: str, mods: dict[str, Path]) -> str | None:
    """The module ``name`` runs: itself, or for ``pkg.mod.attr`` the longest known prefix."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def parse(path: Path) -> ast.Module:
    """The module's tree, with no garbage collection while CPython builds it: objects left by tests
    before this one in the same worker (pending Outputs of recorded programs) collected in the middle
    of it made CPython 3.11.7 fail with "AST constructor recursion depth mismatch"."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text(), filename=str(path))
    finally:
        if enabled:
            gc.enable()


def imports(name: str, path: Path, mods: dict[str, Path], root: Path = ROOT) -> list[Edge]:
    """Every intra-package import of one module, with where it is written."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = parse(path)
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import mod` imports the submodule; `from mod import name` the module.
            found += [(f"{module}.{alias.name}" if f"{module}.{alias.name}" in mods else module, node.lineno)
                      for alias in node.names]
    edges: list[Edge] = []
    where = path.relative_to(root) if path.is_relative_to(root) else path
    for target, line in found:
        head, _, rest = target.partition(".")
        if head in ALIASES:
            target = ALIASES[head] + (f".{rest}" if rest else "")
        hit = _known(target, mods)
        if hit is None:
            continue  # the standard library or a dependency
        if hit != name:
            edges.append((name, hit, f"{where}:{line}"))
        # The packages above it run first, unless the importer is inside them (already loading).
        mine = {*_ancestors(name), name}
        edges += [(name, runs, f"{where}:{line}") for runs in _ancestors(hit) if runs not in mine]
    return edges


def graph(mods: dict[str, Path], root: Path = ROOT) -> dict[str, list[Edge]]:
    return {name: imports(name, path, mods, root) for name, path in mods.items()}


def circles(edges: dict[str, list[Edge]]) -> list[tuple[list[str], list[Edge]]]:
    """Each strongly connected group of modules (Tarjan), with one circle through it: the imports
    that close it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~100)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for _, w, _ in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or any(t == v for _, t, _ in edges.get(v, ())):
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [(sorted(g), _cycle_in(sorted(g), edges, g)) for g in groups]


def _cycle_in(start: list[str], edges: dict[str, list[Edge]], group: set[str]) -> list[Edge]:
    """A shortest circle through the first module of a group (breadth-first back to it)."""
    first = start[0]
    came: dict[str, Edge] = {}
    frontier = [first]
    while frontier:
        nxt = []
        for v in frontier:
            for e in edges.get(v, ()):
                w = e[1]
                if w not in group:
                    continue
                if w == first:
                    path = [e]
                    while path[0][0] != first:
                        path.insert(0, came[path[0][0]])
                    return path
                if w not in came:
                    came[w] = e
                    nxt.append(w)
        frontier = nxt
    return []


def describe(circle: list[Edge]) -> str:
    return " -> ".join(f"{a} ({where})" for a, _, where in circle) + f" -> {circle[0][0]}"


def report(found: list[tuple[list[str], list[Edge]]]) -> str:
    return "\n".join(f"{len(group)} modules in a circle ({', '.join(group)}); one way round: {describe(circle)}"
                     for group, circle in found)


# ---------------------------------------------------------------- the tests


def test_the_packages_import_graph_has_no_circle():
    mods = modules()
    assert "berth.components.stack" in mods and "berth.policies.rules" in mods  # the layout is read
    found = circles(graph(mods))
    assert not found, "import circles, each import as (file:line):\n" + report(found)


def test_a_circle_is_found_even_through_an_import_inside_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from .sub.c import other\n    return other\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import pkg.a\n\nother = 1\n")
    mods = modules({"pkg": pkg})
    [(group, circle)] = circles(graph(mods, tmp_path))
    assert group == ["pkg.a", "pkg.b", "pkg.sub.c"]
    assert describe(circle) == ("pkg.a (pkg/a.py:1) -> pkg.b (pkg/b.py:2) -> pkg.sub.c (pkg/sub/c.py:1) -> pkg.a")


def test_a_package_init_that_imports_its_own_modules_is_no_circle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .a import x\n")
    (pkg / "a.py").write_text("from .b import y\nx = y\n")
    (pkg / "b.py").write_text("y = 1\n")
    assert circles(graph(modules({"pkg": pkg}), tmp_path)) == []
    # ... but a module importing its package's __init__ back is one.
    (pkg / "b.py").write_text("from . import x as y\n")
    assert [describe(c) for _, c in circles(graph(modules({"pkg": pkg}), tmp_path))] == [
        "pkg (pkg/__init__.py:1) -> pkg.a (pkg/a.py:1) -> pkg.b (pkg/b.py:1) -> pkg"]


#: What may import the stack (it builds the whole stack) and the program (which reads config and
#: builds it): the entry points above them. Below them, data only flows down.
ABOVE = {
    "berth.components.stack": {"berth.components.program", "berth.api"},
    "berth.components.program": {"berth.record"},
}


def test_nothing_below_the_stack_imports_the_stack_or_the_program():
    edges = graph(modules())
    for top, allowed in ABOVE.items():
        importers = {(a, where) for a, es in edges.items() for _, b, where in es if b == top}
        assert {a for a, _ in importers} <= allowed, f"{top} imported from below: " + ", ".join(
            f"{a} ({where})" for a, where in sorted(importers) if a not in allowed)
