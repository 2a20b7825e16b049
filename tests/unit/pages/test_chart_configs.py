"""Every graph on every page, in the layouts and in what callbacks build: small charts hide the mode bar, and a
graph that shows it holds a figure whose titles start below it (the rule of ``tests/unit/figures/test_titles.py``).
"""

from __future__ import annotations

import pytest
from dash import dcc

from app.ui.components import SMALL_CHART_PX
from tests.unit.figures.test_titles import modebar_overlaps

MAX_BUTTONS = 4  # ~27 px each: one row in the narrowest card with a mode bar (a compare card, ~180 px)
VIEWPORT_PX = 600  # the smallest window height the pages are laid out for: "72vh" is at least 430 px


@pytest.fixture(scope="module")
def pages():
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import classes, compare, explore, finder, train

    return {"explore": explore, "compare": compare, "finder": finder, "classes": classes, "train": train}


def _graphs(component) -> list[dcc.Graph]:
    roots = component if isinstance(component, list | tuple) else [component]
    found = []
    for root in roots:
        if isinstance(root, dcc.Graph):
            found.append(root)
        if hasattr(root, "_traverse"):
            found += [c for c in root._traverse() if isinstance(c, dcc.Graph)]
    return found


def _height_px(graph: dcc.Graph) -> float:
    height = (getattr(graph, "style", None) or {}).get("height", "450px")  # dcc.Graph's default height
    if height.endswith("vh"):
        return float(height[:-2]) / 100 * VIEWPORT_PX
    return float(height.removesuffix("px"))


def _problems(graph: dcc.Graph) -> list[str]:
    config = getattr(graph, "config", None) or {}
    name = getattr(graph, "id", None) or "a graph"
    if config.get("displayModeBar") is False:
        return []
    problems = []
    buttons = [button for group in config.get("modeBarButtons", []) for button in group]
    if not buttons or len(buttons) > MAX_BUTTONS:  # Plotly's full bar wraps to two rows in a narrow card
        problems.append(f"{name}: a mode bar of {len(buttons) or 'all'} buttons may take two rows")
    if _height_px(graph) < SMALL_CHART_PX:
        problems.append(f"{name}: {_height_px(graph):.0f} px tall with a mode bar")
    figure = getattr(graph, "figure", None)
    if figure:
        problems += [f"{name}: {p}" for p in modebar_overlaps(figure["layout"])]
    return problems


def test_page_layouts_hide_the_mode_bar_of_small_charts(pages, app_store):
    graphs = {name: _graphs(page.layout()) for name, page in pages.items()}
    assert all(graphs.values())  # every page has graphs: the walk finds them
    assert [p for found in graphs.values() for graph in found for p in _problems(graph)] == []


def test_graphs_built_by_callbacks_keep_titles_clear(pages, app_store):
    cards, *_ = pages["compare"].render_images("mnist-cnn", "Conv2D_3", "3, 12", "viridis", None, None)
    *_, all_classes, _info, _message = pages["classes"].render_classes("mnist-cnn", "Conv2D_3", 4, 9, "viridis")
    graphs = _graphs(cards) + _graphs(all_classes)
    assert len(graphs) == 2 * 2 + 10
    assert [p for graph in graphs for p in _problems(graph)] == []


def test_the_check_catches_a_small_chart_with_a_mode_bar():
    small = dcc.Graph(id="g", style={"height": "200px"}, config={"modeBarButtons": [["zoom2d"]]})
    assert _problems(dcc.Graph(id="f", style={"height": "400px"}, config={"displaylogo": False}))  # full bar
    covered = dcc.Graph(id="h", figure={"layout": {"title": {"text": "t"}, "margin": {"t": 30}}})
    assert _problems(small) and _problems(covered)
    assert not _problems(dcc.Graph(id="i", style={"height": "200px"}, config={"displayModeBar": False}))
