"""Every server callback, called through ``/_dash-update-component`` exactly as the browser calls it, with hostile
values: the answer is an update (200) or no update (204), never a 5xx, never a failure the app's ``on_error`` net
has to catch, and never a malformed-request 400 (the requests are well formed; only their values are hostile).

The callbacks are discovered from ``/_dash-dependencies``, so a new callback is covered without touching this file.
Valid values come from the pages' own layouts (what the browser holds after opening a page), so a request that
changes one value reaches the code that uses it.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.hostile.support import (
    NUMBER_LOOKALIKES,
    ODD_STRINGS,
    Dependency,
    callback_body,
    captured_errors,
    concrete,
    dependencies,
    describe,
    examples,
    hostile,
    strict_json,
    stringify_id,
    wildcard,
)

# Loggers that report a callback failure: the app's on_error net and its handler of undispatchable requests.
FAILURE_LOGGERS = ("app.main", "app.api.blueprint")

CLICK = {"points": [{"curveNumber": 0, "pointNumber": [1, 2], "pointIndex": [1, 2], "x": 2, "y": 1, "z": 0.5,
                     "customdata": [3, 1, 2]}]}
# Values the browser holds for properties no layout sets (clicks, timers) or sets to None on purpose.
PROPERTY_BASELINES = {"n_clicks": 1, "n_intervals": 1, "clickData": CLICK}
FIXED_BASELINES = {
    ("compare-diff-a", "value"): 3,
    ("compare-diff-b", "value"): 12,
    ("train-probe-slider", "value"): 2,
    ("train-probe-slider", "max"): 3,
    ("_pages_location", "pathname"): "/compare",
    ("_pages_location", "search"): "?model=mnist-cnn&images=3,12",
    # the page of maps Explore drew (a paged layer's), so that clicks and the page buttons reach their code
    ("explore-page-shown", "data"): {"page": 1, "pages": 2, "per_row": 8, "units": [5, 3, 1]},
}
PATTERN_BASELINES = {
    ("compare-grid", "clickData"): CLICK,
    ("finder-pick", "value"): True,
    ("unit-panel-by", "value"): "max",
    ("unit-panel-state", "data"): {"model": "mnist-cnn", "layer": "Conv2D_1", "unit": 3},
}
UNIT_PANEL_PAGES = ["explore", "compare", "classes", "why"]
PAGES_ROUTER = "_pages_location"

QUERY_KEYS = ["model", "layer", "image", "images", "cmap", "a", "b", "true", "predicted", "correct", "conf", "sort",
              "mlp", "job", "reverse", "scale", "x", "_other", "layout"]
query_values = st.sampled_from(NUMBER_LOOKALIKES + ODD_STRINGS[:-1] + ["mnist-cnn", "tiny", "Conv2D_3", "Dense_1",
                                                                       "0,1", "3,12,x", "0.2,0.9", "jet", "wrong"])
# The pages router gets what the browser's location holds: a pathname starting with "/" and a search string (Dash's
# own router, not the app's code, refuses any other pathname; see test_router_survives_a_pathname_no_browser_sends).
pathnames = st.one_of(
    st.sampled_from(["/", "/compare", "/finder", "/classes", "/why", "/train", "/nope", "//", "/compare/",
                     "/_dash-layout"]),
    st.text(max_size=30).map(lambda text: "/" + text),
)
searches = st.one_of(
    st.sampled_from(["", "?", "?&", "?=", "?a", "x"] + NUMBER_LOOKALIKES),
    st.text(max_size=40).map(lambda text: "?" + text),
    st.lists(st.tuples(st.sampled_from(QUERY_KEYS), query_values), max_size=5).map(
        lambda pairs: "?" + "&".join(f"{key}={value}" for key, value in pairs)
    ),
)
ROUTER_VALUES = {"pathname": pathnames, "search": searches}


class Baselines(dict):
    """The valid values, keyed ``(component id, property)``; shown by name only in hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} valid values from the page layouts>"


def _all_dependencies() -> list[Dependency]:
    from app.main import server

    return dependencies(server.test_client())


DEPENDENCIES = _all_dependencies()


@pytest.fixture(scope="module")
def baselines(client, finished_job) -> dict[tuple[str, str], object]:
    """``(component id, property) -> value`` as the browser holds them after opening each page with no query."""
    from app.pages import classes, compare, explore, features, finder, train, why

    found = Baselines()
    for page in (explore, compare, finder, classes, train, features, why):
        tree = page.layout()
        for component_id in tree:
            if isinstance(component_id, str):
                component = tree[component_id]
                for prop, value in component.to_plotly_json()["props"].items():
                    found[(component_id, prop)] = value
    found.update(FIXED_BASELINES)
    found[("train-view", "data")] = finished_job
    found[("train-pin", "data")] = finished_job["job"]
    return found


def _valid(baselines, component_id, prop):
    if isinstance(component_id, dict):
        return PATTERN_BASELINES.get((component_id.get("type"), prop), component_id if prop == "id" else None)
    value = baselines.get((component_id, prop))
    return PROPERTY_BASELINES.get(prop) if value is None else value


def _value(data, baselines, component_id, prop, is_hostile):
    valid = _valid(baselines, component_id, prop)
    if not is_hostile:
        return valid
    if component_id == PAGES_ROUTER:
        return data.draw(ROUTER_VALUES[prop], label=f"{component_id}.{prop}")
    return data.draw(hostile(valid), label=f"{stringify_id(component_id)}.{prop}")


def draw_call(data, dependency: Dependency, baselines) -> dict:
    """One browser-shaped request body for ``dependency``, with one, two or all of its values hostile."""
    entries = dependency.inputs + dependency.state
    count = data.draw(st.sampled_from([1, 1, 1, 2, len(entries)]), label="hostile values")
    positions = set(data.draw(st.lists(st.integers(0, len(entries) - 1), min_size=1, max_size=count, unique=True),
                              label="positions"))
    patterns: dict[str, list] = {}  # one list of matching ids per ALL pattern, shared by its inputs and state
    match_page = data.draw(st.sampled_from(UNIT_PANEL_PAGES), label="MATCH page")
    built = []
    for position, entry in enumerate(entries):
        prop, is_hostile = entry["property"], position in positions
        pattern_text = entry["id"]
        if not pattern_text.startswith("{"):
            built.append({"id": pattern_text, "property": prop,
                          "value": _value(data, baselines, pattern_text, prop, is_hostile)})
            continue
        pattern = json.loads(pattern_text)
        if wildcard(pattern) == "MATCH":
            component_id = concrete(pattern, match_page)
            built.append({"id": component_id, "property": prop,
                          "value": _value(data, baselines, component_id, prop, is_hostile)})
            continue
        if pattern_text not in patterns or (is_hostile and data.draw(st.booleans(), label="other length")):
            keys = data.draw(st.lists(st.integers(0, 1200), max_size=5, unique=True), label="indices")
            patterns[pattern_text] = [concrete(pattern, key) for key in keys]
        built.append([
            {"id": component_id, "property": prop, "value": _value(data, baselines, component_id, prop, is_hostile)}
            for component_id in patterns[pattern_text]
        ])
    inputs, state = built[: len(dependency.inputs)], built[len(dependency.inputs):]
    triggers = [
        f"{stringify_id(item['id'])}.{item['property']}"
        for entry in inputs
        for item in (entry if isinstance(entry, list) else [entry])
    ]
    changed = data.draw(st.lists(st.sampled_from(triggers), max_size=2, unique=True), label="changed") if triggers \
        else []
    return callback_body(dependency, inputs, state, changed)


@pytest.mark.parametrize("dependency", DEPENDENCIES, ids=lambda dependency: dependency.name)
@examples(80)
@given(data=st.data())
def test_callback_answers_hostile_values(client, baselines, dependency, data):
    body = draw_call(data, dependency, baselines)
    with captured_errors(*FAILURE_LOGGERS) as failures:
        response = client.post("/_dash-update-component", json=body)
    assert response.status_code < 500, response.data[:500]
    assert not failures, describe(failures)
    assert response.status_code in (200, 204), response.data[:500]
    if response.status_code == 200:
        assert "response" in strict_json(response.data)


def test_every_server_callback_is_covered():
    from app.main import app

    clientside = {item["output"] for item in app._callback_list if item.get("clientside_function")}
    assert {dependency.output for dependency in DEPENDENCIES} == set(app.callback_map) - clientside
    assert len(DEPENDENCIES) >= 25


def test_server_keeps_serving_after_hostile_callbacks(client, baselines):
    assert client.get("/healthz").get_json()["status"] == "ok"
    render = next(d for d in DEPENDENCIES if d.name == "explore-heatmap.figure")
    values = {"explore-model": "mnist-cnn", "explore-layer": "Conv2D_3", "explore-image": 42, "explore-cmap": "jet",
              "explore-reverse": False, "explore-scale": False, "explore-fixed": False, "explore-order": "model",
              "explore-image-asked": {"image": 42, "at": 1}}
    inputs, state = ([{"id": entry["id"], "property": entry["property"], "value": values.get(entry["id"])}
                      for entry in entries] for entries in (render.inputs, render.state))
    response = client.post("/_dash-update-component",
                           json=callback_body(render, inputs, state, ["explore-image-asked.data"]))
    assert response.status_code == 200
    figure = strict_json(response.data)["response"]["explore-heatmap"]["figure"]
    assert "128 maps of image 42" in figure["layout"]["title"]["text"]


@pytest.mark.parametrize("pathname", ["", "compare", None, 7, ["/"], {"a": 1}])
def test_router_refuses_a_pathname_no_browser_sends(client, pathname):
    """A forged pathname (not text, or without the leading "/") would fail inside Dash's own pages router, with a
    traceback logged for every such request: it is refused as a malformed request before Dash reads it, nothing
    is logged as a failure, and the server keeps serving."""
    router = next(d for d in DEPENDENCIES if "_pages_content.children" in d.output)
    inputs = [{"id": PAGES_ROUTER, "property": "pathname", "value": pathname},
              {"id": PAGES_ROUTER, "property": "search", "value": ""}]
    with captured_errors(*FAILURE_LOGGERS, "dash", "dash.dash") as failures:
        response = client.post("/_dash-update-component",
                               json=callback_body(router, inputs, [], [f"{PAGES_ROUTER}.pathname"]))
    assert response.status_code == 400 and "pathname" in response.get_json()["error"]
    assert not failures, describe(failures)
    assert client.get("/healthz").status_code == 200
