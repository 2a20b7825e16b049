"""The benchmark scripts still fit the app: every one imports, every import they make (also the ones inside
functions, which run only when a benchmark does) names a module and names that exist, and the explorer callback
they post supplies every input the app's callback takes.

Nothing here runs a benchmark: an app module renamed or a callback input added breaks this test, not a benchmark
run weeks later.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import random
import sys
from types import SimpleNamespace

import pytest

from app.config import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
SCRIPTS = sorted(path.stem for path in BENCH.glob("*.py"))
# Imported only when a benchmark needs them, and checked only for being installed: importing them takes seconds.
HEAVY = {"keras", "tensorflow"}


@pytest.fixture
def bench_path(monkeypatch):
    """``bench/`` first on ``sys.path``, as when a script of it runs (they import each other by bare name); the
    path and the bare names are restored afterwards."""
    monkeypatch.syspath_prepend(str(BENCH))  # also undoes the scripts' own sys.path.insert calls
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name in SCRIPTS:
            del sys.modules[name]


def imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """``(module, names imported from it, line)`` for every import statement of ``tree``, at any depth, except
    those in the handler of an ImportError: a fallback for an older checkout of the app (``--tree``)."""
    fallbacks: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None and (
            {getattr(name, "id", None) for name in ast.walk(node.type)} & {"ImportError", "ModuleNotFoundError"}
        ):
            fallbacks |= {id(child) for statement in node.body for child in ast.walk(statement)}
    found = []
    for node in ast.walk(tree):
        if id(node) in fallbacks:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def missing(module: str, names: list[str]) -> list[str]:
    """What of ``from module import names`` (or ``import module``) does not exist."""
    if module.split(".")[0] in HEAVY:
        return [] if importlib.util.find_spec(module.split(".")[0]) else [module]
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        return [f"{module} ({exc})"]
    return [f"{module}.{name}" for name in names
            if not hasattr(imported, name) and importlib.util.find_spec(f"{module}.{name}") is None]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_imports(script, bench_path):
    importlib.import_module(script)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_import_of_a_script_exists(script, bench_path):
    tree = ast.parse((BENCH / f"{script}.py").read_text())
    problems = [f"line {line}: {name}" for module, names, line in imports(tree) for name in missing(module, names)]
    assert not problems, f"bench/{script}.py imports what does not exist: {problems}"


def test_the_import_check_sees_imports_inside_functions():
    tree = ast.parse("def main():\n    from app import services\n")
    assert missing(*imports(tree)[0][:2]) == ["app.services"]


def test_the_import_check_skips_fallbacks_for_older_checkouts():
    tree = ast.parse("try:\n    from app.context import of_server\nexcept ImportError:\n    from app import services\n")
    assert [module for module, _, _ in imports(tree)] == ["app.context"]


@pytest.fixture(scope="module")
def dependencies():
    """The app's own ``/_dash-dependencies``, as a benchmark reads them from the server it measures."""
    from app.main import server

    return server.test_client().get("/_dash-dependencies").get_json()


def explorer_inputs(dependencies) -> set[str]:
    (render,) = [dependency for dependency in dependencies
                 if "explore-heatmap.figure" in dependency["output"] and not dependency.get("clientside_function")]
    return {f"{dep['id']}.{dep['property']}" for dep in render["inputs"]}


def posted_inputs(body) -> set[str]:
    return {f"{dep['id']}.{dep['property']}" for dep in body["inputs"]}


def test_every_explorer_render_the_benchmarks_post_has_the_apps_inputs(dependencies, bench_path):
    import load_test
    import serving
    import view_server

    expected = explorer_inputs(dependencies)
    bodies = {
        "load_test.explorer_render": load_test.explorer_render(dependencies, "Conv2D_3", 5, "jet", True),
        "view_server.render_request": view_server.render_request(dependencies, "Conv2D_1", 3),
        "serving.render_body": json.loads(serving.render_body(SimpleNamespace(dependencies=dependencies),
                                                              "Dense_1", 7)),
    }
    plan = load_test.Plan(layers=["Conv2D_1"], n_images=10, top_units=1, dependencies=dependencies)
    rng = random.Random(0)
    picks = (plan.pick(rng) for _ in range(100))
    bodies["load_test.Plan.pick"] = json.loads(next(body for route, *_, body, _ in picks if route == "callback"))
    for where, body in bodies.items():
        assert posted_inputs(body) == expected, where
        assert body["output"].startswith("..explore-heatmap.figure..."), where
    posted = bodies["load_test.explorer_render"]
    chosen = {dep["id"]: dep["value"] for dep in posted["inputs"] + posted.get("state", [])}
    assert (chosen["explore-model"], chosen["explore-layer"], chosen["explore-image"]) == ("mnist-cnn", "Conv2D_3", 5)
    assert (chosen["explore-cmap"], chosen["explore-scale"]) == ("jet", True)


def test_the_view_the_load_sends_is_one_the_app_answers(dependencies, bench_path):
    """Both designs' view requests (:func:`serving.view_request`): the explorer-view route this tree has, and the
    render callback an older tree is sent, each answered 200 with what the load checks for."""
    import serving

    from app.main import server

    client = server.test_client()
    for view_route, method in ((True, "GET"), (False, "POST")):
        view = serving.view_request(SimpleNamespace(view_route=view_route, dependencies=dependencies), "Conv2D_1", 3)
        answer = client.open(view.path, method=view.method, data=view.body, content_type="application/json")
        assert (view.method, answer.status_code) == (method, 200), answer.get_data()[:300]
        assert view.proof in answer.get_data()
