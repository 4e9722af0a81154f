"""The import graph of the project's own packages: no cycles, no private names across modules,
and dependencies that point one way (front -> chat -> recommender -> catalog -> recsite core).

Imports inside functions count: a cycle hidden in a function body is still a cycle for the reader
and for the import order at run time."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

REPO = Path(settings.BASE_DIR)
PACKAGES = ("recsite", "catalog", "recommender", "chat", "front")
# Lower layers may not import higher ones. recsite's wiring modules (URLs, Celery app, health
# probes, metrics collectors, settings, gunicorn's hooks) sit above every app and are left out
# of the check.
LAYERS = {"recsite": 0, "catalog": 1, "recommender": 2, "chat": 3, "front": 4}
WIRING = (
    "recsite.urls",
    "recsite.api.urls",
    "recsite.celery",
    "recsite.gunicorn.conf",
    "recsite.health",
    "recsite.scrape",
    "recsite.settings",
    "recsite.management",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            modules[_module_name(path)] = path
    return modules


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # a module's own package is its name minus the last part; a package's is itself
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import in the file, at any depth."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            for alias in node.names:
                # `from package import module` imports the module, not a name
                sub = f"{target}.{alias.name}"
                found.append((sub, None) if sub in known else (target, alias.name))
    return [(m, n) for m, n in found if m.split(".")[0] in PACKAGES]


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The project module that `name` refers to (a module, or the package holding it)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    known = project_modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for target, _ in imports_of(module, path, known):
            owner = _owner(target, known)
            if owner and owner != module and not module.startswith(owner + "."):
                graph[module].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle_and_accepts_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_private_name_imported_across_modules():
    known = project_modules()
    offending = []
    for module, path in known.items():
        for target, name in imports_of(module, path, known):
            if name and name.startswith("_") and not name.startswith("__"):
                offending.append(f"{module} imports {name} from {target}")
            # a private module (engine/_implicit.py) is for its own package only
            private = [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            package = target.rpartition(".")[0]
            if private and module != package and not module.startswith(package + "."):
                offending.append(f"{module} imports the private module {target}")
    assert offending == [], "\n".join(offending)


def _entry_point(module: str) -> bool:
    """The REST API, the admin and management commands are entry points above the domain, like
    the pages: they may call any app (DESIGN.md's "pages and API" at the end of the data flow)."""
    parts = module.split(".")
    return module.startswith(WIRING) or "api" in parts or "admin" in parts or "management" in parts


def test_dependencies_point_down_the_layers():
    offending = []
    for module, targets in import_graph().items():
        if _entry_point(module):
            continue
        for target in targets:
            if LAYERS[target.split(".")[0]] > LAYERS[module.split(".")[0]]:
                offending.append(f"{module} -> {target}")
    assert offending == [], "\n".join(sorted(offending))


def test_only_the_engine_imports_implicit_and_only_the_llm_client_imports_openai():
    known = project_modules()
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top == "implicit":
                    assert module.startswith("recommender.engine"), module
                if top == "openai":
                    assert module == "chat.llm", module


def test_the_recommenders_lower_modules_reach_no_reads_writes_or_tasks():
    """history, scoring, evidence and storage sit below the public reads and the training runs:
    nothing they import, directly or not, leads back up."""
    graph = import_graph()
    above = {"recommender.selectors", "recommender.services", "recommender.tasks"}
    for low in ("storage", "history", "scoring", "evidence", "embeddings.coldstart"):
        reached, frontier = set(), [f"recommender.{low}"]
        while frontier:
            for nxt in graph[frontier.pop()] - reached:
                reached.add(nxt)
                frontier.append(nxt)
        assert not reached & above, (low, reached & above)


def test_the_graph_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "module.py"
    path.write_text("def f():\n    from recommender import tasks\n    from .selectors import x\n")
    known = {"recommender.tasks": path, "catalog.selectors": path}
    found = imports_of("catalog.views", path, known)
    assert ("recommender.tasks", None) in found
    assert ("catalog.selectors", "x") in found
