"""The architecture as tests: which packages may import what, no import cycles, no lazy imports but TensorFlow's.

The map these check is the README's "Layout" section.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

APP = PROJECT_ROOT / "app"
LAZY_ALLOWED = {"keras", "tensorflow"}  # seconds of start-up: imported where first needed, and only there


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, ast.Module]:
    """Every module of ``app`` by dotted name, parsed."""
    return {module_name(path): ast.parse(path.read_text()) for path in sorted(APP.rglob("*.py"))}


def imports_of(tree: ast.Module) -> list[tuple[str, bool]]:
    """``(imported module, at module level?)`` for every import statement of ``tree``.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module of the app, else ``a.b``.
    """
    top_level = {id(node) for node in tree.body}
    top_level |= {id(child) for node in tree.body if isinstance(node, ast.If | ast.Try) for child in ast.walk(node)}
    names = set(app_modules_cache)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.append((candidate if candidate in names else node.module, id(node) in top_level))
    return found


app_modules_cache = app_modules()


def app_graph() -> dict[str, set[str]]:
    """Import edges between the app's own modules."""
    return {
        name: {imported for imported, _ in imports_of(tree) if imported in app_modules_cache and imported != name}
        for name, tree in app_modules_cache.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_app():
    assert find_cycle(app_graph()) is None


def test_only_keras_and_tensorflow_are_imported_lazily():
    lazy = [
        f"{name} imports {imported} inside a function"
        for name, tree in app_modules_cache.items()
        for imported, at_top in imports_of(tree)
        if not at_top and imported.split(".")[0] not in LAZY_ALLOWED
    ]
    assert lazy == []


def test_nothing_imports_the_pages():
    importers = [
        f"{name} imports {imported}"
        for name, targets in app_graph().items()
        for imported in targets
        if imported.startswith("app.pages") and not name.startswith("app.pages.__init__")
    ]
    assert importers == []


def modules_under(package: str) -> list[str]:
    return [name for name in app_modules_cache if name == package or name.startswith(package + ".")]


@pytest.mark.parametrize(
    ("packages", "forbidden"),
    [
        (("app.core", "app.jobs"), ("dash", "flask", "dash_bootstrap_components", "plotly")),
        (("app.figures",), ("dash", "flask", "dash_bootstrap_components")),
        # the users file is read by the settings every process loads, the training worker too: plain stdlib
        (("app.accounts", "app.config"), ("dash", "flask", "werkzeug", "plotly")),
    ],
)
def test_layers_import_no_web_framework(packages, forbidden):
    """Imports every module of ``packages`` in a fresh interpreter and checks what got loaded."""
    modules = [name for package in packages for name in modules_under(package)]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {list(forbidden)!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", f"{packages} loaded {result.stdout.strip()}"
