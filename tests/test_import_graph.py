"""The layers hold: read every import with ``ast`` and check who may import whom.

Every import counts, wherever it is: at the top, under ``if TYPE_CHECKING:``, or inside a
function (a lazy import is still a dependency). Modules are named as Python names them
(``py_nodes/erldist/node.py`` is ``py_nodes.erldist.node``); ``from . import etf`` is an import
of the submodule ``etf``, not of its package.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("py_nodes", "orbital", "scheduler", "web", "bench", "tests")
ERLDIST = "py_nodes.erldist"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module under ``root/package`` by dotted name (packages by their ``__init__``)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path, known: Iterable[str]) -> Iterator[str]:
    """Absolute names of what ``module`` imports; ``from P import x`` gives ``P.x`` when that is a
    module in ``known``, else ``P``."""
    known = set(known)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if not is_package:
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            if submodules:
                yield from submodules
            if not submodules or len(submodules) < len(node.names):
                yield base


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``module -> imported names`` for every module under ``root/package``."""
    files = module_files(root, package)
    return {name: set(imported_names(name, path, files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the graph's own modules (as a path a -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if dep not in graph or dep == name:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)) is not None:
            return cycle
    return None


def offenders(graph: dict[str, set[str]], forbidden: Iterable[str]) -> list[str]:
    """``module -> name`` for every import of a forbidden package (or anything inside one)."""
    prefixes = tuple(forbidden)
    return sorted(
        f"{module} -> {name}"
        for module, names in graph.items()
        for name in names
        if any(name == p or name.startswith(p + ".") for p in prefixes)
    )


# -- the rules ------------------------------------------------------------------------------


def test_erldist_has_no_import_cycle() -> None:
    graph = {m: deps for m, deps in import_graph(ROOT, "py_nodes").items() if m.startswith(ERLDIST)}
    assert len(graph) > 10, "py_nodes/erldist not found"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in py_nodes/erldist: " + " -> ".join(cycle or [])


def test_erldist_imports_nothing_else_from_the_project() -> None:
    graph = {m: deps for m, deps in import_graph(ROOT, "py_nodes").items() if m.startswith(ERLDIST)}
    outside = [o for o in offenders(graph, PROJECT) if not o.split(" -> ")[1].startswith(ERLDIST)]
    assert outside == []


def test_erldist_reads_no_environment() -> None:
    """Its callers pass settings in (``Node(epmd_address=...)``); only the settings module reads env."""
    names = {"environ", "environb", "getenv", "getenvb", "putenv"}
    found = []
    for module, path in module_files(ROOT, "py_nodes").items():
        if module.startswith(ERLDIST):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                used = (
                    {node.attr} if isinstance(node, ast.Attribute)
                    else {a.name for a in node.names} if isinstance(node, ast.ImportFrom) and node.module == "os"
                    else set()
                )  # fmt: skip
                found += [f"{module}:{node.lineno} {name}" for name in used & names]
    assert found == []


def test_orbital_imports_nothing_else_from_the_project() -> None:
    graph = import_graph(ROOT, "orbital")
    assert graph, "orbital/ not found"
    assert offenders(graph, [p for p in PROJECT if p != "orbital"]) == []


def test_scheduler_imports_nothing_else_from_the_project() -> None:
    """The planning engine is pure: the scheduler role (py_nodes) feeds it, never the reverse."""
    graph = import_graph(ROOT, "scheduler")
    assert graph, "scheduler/ not found"
    assert offenders(graph, [p for p in PROJECT if p != "scheduler"]) == []
    allowed = {"numpy"}  # and the standard library
    third_party = sorted(
        f"{module} -> {name}"
        for module, names in graph.items()
        for name in names
        if name.split(".")[0] not in sys.stdlib_module_names | allowed | {"scheduler"}
    )
    assert third_party == []


def test_py_nodes_does_not_import_web() -> None:
    """Only the gateway role reaches up into web/ (lazily: aiohttp in the HTTP node only)."""
    assert offenders(import_graph(ROOT, "py_nodes"), ["web"]) == ["py_nodes.roles.gateway -> web.role"]


# -- the checker itself ---------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_checker_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .a import A\n",
            "pkg/a.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .b import B
                A = 1
            """,
            "pkg/b.py": """
                def late():
                    from . import c
            """,
            "pkg/c.py": "import pkg.a\nfrom pkg.sub import d\n",
            "pkg/sub/__init__.py": "from .. import c\n",
            "pkg/sub/d.py": "from ...elsewhere import thing\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"typing", "pkg.b"}
    assert graph["pkg.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a", "pkg.sub.d"}
    assert graph["pkg.sub"] == {"pkg.c"}
    assert graph["pkg.sub.d"] == {"elsewhere"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert offenders(graph, ["elsewhere"]) == ["pkg.sub.d -> elsewhere"]
    del graph["pkg.b"]
    assert find_cycle(graph) is None


def test_web_holds_no_sql() -> None:
    """Queries live in py_nodes/db (repositories); web/ only calls them."""
    sql = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "web").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sql.search(line) and not line.lstrip().startswith("#")
    ]
    assert offending == []
