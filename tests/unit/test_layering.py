"""The architecture as tests: which packages may import what, no import cycles, no lazy imports but TensorFlow's.

The map these check is the README's "Layout" section: its arrows are read from there, so the map and the code
cannot drift apart.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

APP = PROJECT_ROOT / "app"
README = PROJECT_ROOT / "README.md"
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
        (("app.auth.accounts", "app.config"), ("dash", "flask", "werkzeug", "plotly")),
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


def layout_arrows(readme: str) -> dict[str, set[str]]:
    """The README's Layout map as ``{part: parts it may import}``, dotted (``app.core``, ``app.auth.accounts``).

    A part is a line of the map's code block indented by two spaces under ``app/`` (``core/``, ``main.py``); the
    lines indented further continue it; its arrows are the comma-separated names after its last ``->``.
    """
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    parts: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        entry = re.match(r"  (\S+)\s", line + " ")
        if entry and not line.startswith("   "):
            current = "app." + entry[1].removesuffix("/").removesuffix(".py")
            parts[current] = line
        elif line.startswith("   ") and current:
            parts[current] += " " + line
        else:
            current = None  # app/ itself, tests/, bench/: not parts of the app
    arrows = {}
    for part, text in parts.items():
        assert "->" in text, f"the Layout map gives {part} no arrow"
        names = text.rsplit("->", 1)[1].split(",")
        arrows[part] = {f"app.{name.strip()}" for name in names if name.strip()}
    return arrows


def part_of(module: str, parts: set[str]) -> str | None:
    """The part of the map ``module`` belongs to: the longest part that is it or a package above it."""
    owners = [part for part in parts if module == part or module.startswith(part + ".")]
    return max(owners, key=len, default=None)


def layout_violations(modules: dict[str, ast.Module], arrows: dict[str, set[str]]) -> list[str]:
    """Every import of one part of the app by another that the map does not allow, as ``module:line imports
    target``; a module on no part of the map is one too."""
    found = []
    for name, tree in modules.items():
        if name == "app":
            continue
        owner = part_of(name, set(arrows))
        if owner is None:
            found.append(f"{name} is on no part of the README's Layout map")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                           for alias in node.names]
            else:
                continue
            for target in targets:
                if target != "app" and not target.startswith("app."):
                    continue
                target_part = part_of(target, set(arrows))
                allowed = target_part == owner or any(target == a or target.startswith(a + ".")
                                                      for a in arrows[owner])
                if not allowed:
                    found.append(f"{name}:{node.lineno} imports {target}, and the map lets {owner} import only "
                                 f"{', '.join(sorted(arrows[owner])) or 'nothing of the app'}")
    return found


def test_the_layout_map_is_read_whole():
    arrows = layout_arrows(README.read_text())
    assert {"app.core", "app.views", "app.pages", "app.auth", "app.main", "app.config"} <= set(arrows)
    assert arrows["app.core"] == set()
    assert arrows["app.config"] == {"app.core", "app.auth.accounts"}


def test_every_import_follows_the_layout_map():
    assert layout_violations(app_modules_cache, layout_arrows(README.read_text())) == []


def test_a_planted_import_against_the_map_is_named_with_its_line():
    arrows = layout_arrows(README.read_text())
    planted = {**app_modules_cache,
               "app.core.planted": ast.parse("import numpy\n\nfrom app.ui.components import labelled\n"),
               "app.config": ast.parse("from app.auth.gate import Gate\nfrom app.auth.accounts import Account\n"),
               "app.stray": ast.parse("")}
    assert sorted(layout_violations(planted, arrows)) == [
        "app.config:1 imports app.auth.gate, and the map lets app.config import only app.auth.accounts, app.core",
        "app.core.planted:3 imports app.ui.components, and the map lets app.core import only nothing of the app",
        "app.stray is on no part of the README's Layout map",
    ]


def test_at_most_five_modules_at_the_top_of_app():
    flat = sorted(path.name for path in APP.glob("*.py") if path.name != "__init__.py")
    assert len(flat) <= 5, flat
