"""requirements.txt pins every distribution the running app imports, and nothing the app does not need.

The tests run with the dev requirements installed on top of the runtime ones, so a package that only they bring
(Pillow arrived with matplotlib) passes every other test while ``make run`` on a fresh clone crashes at import.
These tests name the import that lacks a pin; ``scripts/smoke_run.py`` (run by ``.ci/run``) serves the app from
a virtualenv of requirements.txt alone.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from app.config import PROJECT_ROOT

APP_DIR = PROJECT_ROOT / "app"
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
# Distributions the runtime runs as commands rather than imports.
RUNTIME_COMMANDS = {"gunicorn": "`make serve` and the Docker image run it"}
# Every virtualenv has these (python -m venv, the Makefile's pip upgrade); pip freeze leaves them out.
VENV_TOOLS = {"pip", "setuptools"}
# Importing a page calls dash.register_page, which needs the Dash app: app.main creates it and imports the pages.
FIRST_IMPORT = "app.main"


def _smoke_run_module():
    """``scripts/smoke_run.py`` (not a package: CI runs it with the system Python), for its requirement parsing."""
    spec = importlib.util.spec_from_file_location("smoke_run", PROJECT_ROOT / "scripts" / "smoke_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


smoke_run = _smoke_run_module()
normalise, pinned_names = smoke_run.normalise, smoke_run.pinned_names


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir``, namespace folders (app/pages) included."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def third_party_imports(package_dir: Path) -> dict[str, set[str]]:
    """Top-level name -> the files that import it, for every absolute import in ``package_dir``.

    Imports inside functions count (a deferred import still runs); the standard library and the package itself
    do not.
    """
    own = package_dir.name
    found: dict[str, set[str]] = {}
    for path in module_files(package_dir).values():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != own and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(package_dir.parent)))
    return found


def unpinned_imports(
    imports: Mapping[str, Iterable[str]], pinned: set[str], distributions: Mapping[str, list[str]]
) -> dict[str, str]:
    """Import name -> why it would fail on a runtime-only install, for each import no pinned distribution provides.

    Args:
        imports: top-level import name -> files that import it (see :func:`third_party_imports`).
        pinned: normalised names pinned in requirements.txt.
        distributions: import name -> distributions that provide it
            (``importlib.metadata.packages_distributions()``).
    """
    problems = {}
    for name, files in sorted(imports.items()):
        where = ", ".join(sorted(files))
        providers = distributions.get(name, [])
        if not providers:
            problems[name] = f"{name} (imported by {where}) is not installed here: no distribution to pin"
        elif not pinned & {normalise(d) for d in providers}:
            problems[name] = (
                f"{name} (imported by {where}) comes from {' or '.join(sorted(set(providers)))}, "
                "which requirements.txt does not pin"
            )
    return problems


def dependency_closure(roots: Iterable[str], requires: Callable[[str], list[str] | None]) -> set[str]:
    """The normalised names of ``roots`` and everything they require on this platform, extras they ask for included.

    Args:
        roots: distribution names.
        requires: distribution name -> its requirement strings (``importlib.metadata.requires``).
    """
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(root, frozenset()) for root in roots]
    while pending:
        name, extras = pending.pop()
        key = normalise(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        for text in requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *extras}):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return {key for key, _ in seen}


def installed_requires(name: str) -> list[str] | None:
    """The requirement strings of an installed distribution (empty if it is not installed)."""
    try:
        return importlib.metadata.requires(name)
    except importlib.metadata.PackageNotFoundError:
        return []


def test_every_third_party_import_of_app_is_pinned_in_requirements():
    problems = unpinned_imports(
        third_party_imports(APP_DIR), pinned_names(REQUIREMENTS), importlib.metadata.packages_distributions()
    )

    assert problems == {}, "\n".join(problems.values())


def test_an_import_whose_distribution_is_not_pinned_is_reported(tmp_path: Path):
    package = tmp_path / "app"
    (package / "pages").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "figures.py").write_text("import os\nfrom . import pages\nfrom app import figures\nimport numpy\n")
    (package / "pages" / "view.py").write_text("def thumbnail():\n    from PIL import Image\n    return Image\n")
    pinned_without_pillow = pinned_names(REQUIREMENTS) - {"pillow"}

    problems = unpinned_imports(
        third_party_imports(package), pinned_without_pillow, {"PIL": ["pillow"], "numpy": ["numpy"]}
    )

    assert list(problems) == ["PIL"]
    assert "app/pages/view.py" in problems["PIL"] and "pillow" in problems["PIL"]


def test_an_import_no_installed_distribution_provides_is_reported(tmp_path: Path):
    package = tmp_path / "app"
    package.mkdir()
    (package / "cache.py").write_text("import diskcache\n")

    problems = unpinned_imports(third_party_imports(package), pinned_names(REQUIREMENTS), {})

    assert "not installed" in problems["diskcache"]


def test_requirements_pin_nothing_the_app_does_not_need():
    """Every pin is an app import, a runtime command, or what they pull in: test-only packages go to -dev."""
    distributions = importlib.metadata.packages_distributions()
    roots = {d for name in third_party_imports(APP_DIR) for d in distributions.get(name, [])} | set(RUNTIME_COMMANDS)
    needed = dependency_closure(roots, installed_requires)
    pinned = pinned_names(REQUIREMENTS)

    unneeded = ", ".join(sorted(pinned - needed))
    unpinned = ", ".join(sorted(needed - pinned - VENV_TOOLS))
    assert not unneeded, f"requirements.txt pins what the app does not need (test-only ones go to -dev): {unneeded}"
    assert not unpinned, f"the app needs these but requirements.txt does not pin them: {unpinned}"


def test_dependency_closure_follows_requested_extras_and_skips_others():
    requires = {
        "celery": ['kombu>=5', 'redis; extra == "redis"', 'pytest; extra == "test"'],
        "kombu": ["vine"],
        "web": ["celery[redis]"],
    }

    assert dependency_closure(["celery"], requires.get) == {"celery", "kombu", "vine"}
    assert dependency_closure(["web"], requires.get) == {"web", "celery", "kombu", "vine", "redis"}


@pytest.mark.parametrize("module", [FIRST_IMPORT, *sorted(set(module_files(APP_DIR)) - {FIRST_IMPORT})])
def test_every_module_of_app_imports(module: str):
    importlib.import_module(FIRST_IMPORT)

    importlib.import_module(module)
