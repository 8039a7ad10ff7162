"""The shape of stablepay's imports (issue 17): no import circle among its modules, and the import-linter
contracts of `.importlinter` (layers running downward, never the host, never the dev tools from production
code) hold, as `make lint` checks them too.

The graph is grimp's, import-linter's own library, built from the source: every import counts, those
inside functions included, so a lazy import cannot hide a circle.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import grimp

from tests.support.services import REPO_ROOT

# `lint-imports --config .importlinter --no-cache`, with this interpreter.
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True, no_logo=True))"
)


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("stablepay", include_external_packages=False, cache_dir=None)


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Each group of modules that import one another round a circle (Tarjan's strongly connected components,
    without recursion), as one shortest circle through its first module."""
    modules = sorted(graph.modules)
    imported = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            module, child = work.pop()
            if child == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            if child < len(imported[module]):
                work.append((module, child + 1))
                target = imported[module][child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            for target in imported[module]:
                if target in on_stack:
                    low[module] = min(low[module], low[target])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1 or module in imported[module]:
                    groups.append(sorted(group))
    return [_one_circle(graph, group) for group in groups]


def _one_circle(graph: grimp.ImportGraph, group: list[str]) -> list[str]:
    start = group[0]
    shortest: tuple[str, ...] | None = None
    for target in graph.find_modules_directly_imported_by(start):
        if target not in group:
            continue
        back = graph.find_shortest_chain(importer=target, imported=start) or ()
        if back and (shortest is None or len(back) < len(shortest)):
            shortest = back
    return [start, *(shortest or ())]


def _describe(graph: grimp.ImportGraph, circle: list[str]) -> str:
    lines = []
    for importer, imported in itertools.pairwise(circle):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = f" (l.{details[0]['line_number']}: {details[0]['line_contents']})" if details else ""
        lines.append(f"  {importer} -> {imported}{where}")
    return "\n".join(lines)


def test_the_circle_finder_finds_a_circle_and_names_its_imports() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b", line_number=3, line_contents="from pkg import b")
    graph.add_import(importer="pkg.b", imported="pkg.c", line_number=5, line_contents="from pkg import c")
    graph.add_import(importer="pkg.c", imported="pkg.a", line_number=9, line_contents="from pkg import a")
    graph.add_import(importer="pkg.c", imported="pkg.d", line_number=1, line_contents="from pkg import d")
    [circle] = _circles(graph)
    assert circle == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert "pkg.c -> pkg.a (l.9: from pkg import a)" in _describe(graph, circle)


def test_no_import_circle_among_stablepays_modules() -> None:
    graph = _graph()
    assert "stablepay.ledger.services" in graph.modules  # the graph is the real one
    circles = _circles(graph)
    assert not circles, "import circles in stablepay:\n" + "\n\n".join(_describe(graph, c) for c in circles)


def test_the_import_contracts_hold() -> None:
    """What `make lint` runs: the layers, never the host, never the dev tools from production code."""
    result = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
