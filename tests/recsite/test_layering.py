"""Imports flow one way: front (pages) -> chat -> recommender -> catalog. Every import counts,
at module level or inside a function (checked on the source, so a lazy import cannot hide)."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# app -> the apps it must never import
FORBIDDEN = {
    "catalog": {"recommender", "chat", "front"},
    "recommender": {"chat", "front"},
    "chat": {"front"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_app_imports_against_the_direction():
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for app, forbidden in FORBIDDEN.items()
        for path in sorted((ROOT / app).rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in forbidden
    ]
    assert wrong == []


def test_the_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from chat import selectors\n")
    assert _imports(module) == [(2, "chat")]
