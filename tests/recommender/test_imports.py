"""The recommender's import graph, read from the source (function-level imports included):
one way only, no private name imported across modules."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

PACKAGE = "recommender"


def _modules() -> dict[str, Path]:
    root = Path(settings.BASE_DIR)
    out: dict[str, Path] = {}
    for path in (root / PACKAGE).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """module -> the modules of the package it imports; and (module, name) of private names
    imported from another module."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private: list[tuple[str, str]] = []
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package[: len(package) - (node.level - 1)]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                if not base.startswith(PACKAGE):
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    graph[name].add(full if full in modules else base)
                    if full not in modules and alias.name.startswith("_"):
                        private.append((name, full))
        graph[name].discard(name)
    return graph, private


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_recommender_has_no_import_cycle():
    graph, _private = _imports(_modules())
    assert "recommender.selectors" in graph["recommender.services"]  # the reader sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_private_name_is_imported_across_modules():
    _graph, private = _imports(_modules())
    # the engine's internals are one package, reviewed on their own
    outside_engine = [p for p in private if not p[0].startswith("recommender.engine")]
    assert outside_engine == []


def test_storage_and_the_layers_below_import_no_reads_writes_or_tasks():
    graph, _private = _imports(_modules())
    above = {"recommender.selectors", "recommender.services", "recommender.tasks"}
    for low in ("storage", "history", "scoring", "evidence", "embeddings.coldstart"):
        reached, todo = set(), [f"recommender.{low}"]
        while todo:  # everything it imports, directly or not
            for nxt in graph[todo.pop()] - reached:
                reached.add(nxt)
                todo.append(nxt)
        assert not reached & above, (low, reached & above)
