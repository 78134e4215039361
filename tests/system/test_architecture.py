"""The shape of the code stays as docs/architecture.md draws it: no module import cycle among
``app/`` and ``workers/`` modules (imports inside functions count), and no import against the
layer table of docs/architecture.md ("Layers"), which this test reads."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "workers")
DOC = ROOT / "docs" / "architecture.md"

Graph = Mapping[str, set[str]]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in its body (a copy of the graph
    this test process parsed once: the source does not change during a run)."""
    return {name: set(targets) for name, targets in _parsed_graph().items()}


@cache
def _parsed_graph() -> dict[str, set[str]]:
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}"  # ``from app.x import y`` may name a module
                    targets.add(full if full in known else resolve(base))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (as a path back to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_round(graph, group) for group in groups]


def _path_round(graph: Graph, group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, set()) & group):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def layer_table(text: str) -> list[tuple[int, list[str]]]:
    """The rows of the "Layers" table of docs/architecture.md: (layer number, patterns)."""
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.match(r"^\d+\b", cells[0]):
            rows.append((int(cells[0].split()[0]), re.findall(r"`([^`]+)`", cells[1])))
    return rows


def _matches(pattern: str, module: str) -> bool:
    wanted, parts = pattern.split("."), module.split(".")
    if len(parts) < len(wanted):
        return False
    return all(w in ("*", p) for w, p in zip(wanted, parts[: len(wanted)], strict=True))


def layer_of(table: Iterable[tuple[int, list[str]]], module: str) -> int | None:
    """The layer whose pattern names the module most specifically (most named parts)."""
    best: tuple[int, int] | None = None
    for layer, patterns in table:
        for pattern in patterns:
            if _matches(pattern, module):
                named = sum(part != "*" for part in pattern.split("."))
                if best is None or named > best[0]:
                    best = (named, layer)
    return best[1] if best is not None else None


def upward_imports(graph: Graph, table: list[tuple[int, list[str]]]) -> list[str]:
    found = []
    for module, imported in sorted(graph.items()):
        mine = layer_of(table, module)
        for other in sorted(imported):
            theirs = layer_of(table, other)
            if mine is None or theirs is None:
                found.append(f"{module} -> {other}: not in the layer table")
            elif theirs > mine:
                found.append(f"{module} (layer {mine}) imports {other} (layer {theirs})")
    return found


# The project -----------------------------------------------------------------------------------


def test_no_module_import_cycle() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_import_against_the_layers_of_docs_architecture() -> None:
    table = layer_table(DOC.read_text())
    assert [layer for layer, _ in table] == [4, 3, 2, 1, 0], table
    found = upward_imports(import_graph(), table)
    assert found == [], "imports against docs/architecture.md's layers:\n" + "\n".join(found)


def test_the_request_records_module_stays_a_leaf() -> None:
    """Every domain imports intake's request primitives; they import only what is below."""
    table = layer_table(DOC.read_text())
    leaves = {"app.intake.keys", "app.intake.sla"}  # themselves over core and models only
    graph = import_graph()
    for module in ("app.intake.records", *leaves):
        above = {m for m in graph[module] if (layer_of(table, m) or 0) > 1} - leaves
        assert above == set(), f"{module} imports {above}"


# The checks themselves -------------------------------------------------------------------------


def test_a_cycle_is_found_and_reported_as_a_path() -> None:
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x", "a.w"}, "a.w": set()}
    assert cycles(graph) == [["a.x", "a.y", "a.z", "a.x"]]
    assert cycles({"a.x": {"a.y"}, "a.y": set()}) == []


def test_an_import_from_inside_a_function_counts() -> None:
    # app/cli.py imports the accounts service only inside the command that uses it.
    assert "app.accounts.service" in import_graph()["app.cli"]


def test_an_upward_import_is_reported_and_the_most_specific_row_wins() -> None:
    table = layer_table(
        "\n## Layers\n| layer | modules |\n|---|---|\n"
        "| 4 edges | `app.*.router`, `app.web` |\n| 3 flows | `app.flows` |\n"
        "| 2 domains | `app.*` |\n| 0 core | `app.core` |\n## Next\n"
    )
    assert layer_of(table, "app.cases.router") == 4
    assert layer_of(table, "app.cases.service") == 2
    assert layer_of(table, "app.core.time") == 0
    graph = {
        "app.cases.service": {"app.flows.request", "app.core.time"},
        "app.flows.request": {"app.cases.service"},
        "app.cases.router": {"app.flows.request"},
        "app.core.time": {"app.web.pages"},
        "app.web.pages": set(),
    }
    assert upward_imports(graph, table) == [
        "app.cases.service (layer 2) imports app.flows.request (layer 3)",
        "app.core.time (layer 0) imports app.web.pages (layer 4)",
    ]
