"""A layer of 300 maps in headless chromium: shown 64 maps a page, stepped to page 2, ordered most active first;
the hover label and a click name the true map number (checked against Keras), the URL holds the page and the order,
the link reopens that page, and a link to a map on another page opens the page that holds it.

Run: ``.venv/bin/python -m pytest tests/browser/test_map_pages.py --headless``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from dash.testing.wait import until

from tests.browser.helpers import CELL_CENTRE, exact_hover_label, wait_for_figure
from tests.conftest import MANY_MAPS_LAYER, layer_outputs, write_many_maps_model

PORT = 8241
META = "return document.querySelector('#' + arguments[0] + ' .js-plotly-plot')._fullData[0].meta;"


@pytest.fixture
def many_maps_store(app_store):
    write_many_maps_model(app_store)
    return app_store


def query(dash_duo) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(dash_duo.driver.current_url).query).items()}


def test_pages_of_maps_step_order_name_true_maps_and_reopen_from_the_link(dash_duo, many_maps_store):
    from app.main import app
    from app.pages import explore
    from tests.app_context import served_context

    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=many-maps&layer={MANY_MAPS_LAYER}&image=1")
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "page 1 of 5, model order" in (s["title"] or ""), 30)
    dash_duo.wait_for_text_to_equal(f"#{explore.PAGE_LABEL}", "maps 1–64 of 300")
    assert dash_duo.find_element(f"#{explore.PAGE_PREVIOUS}").get_attribute("disabled") is not None

    # the next page, in model order: maps 64-127, in the URL as page=2
    dash_duo.find_element(f"#{explore.PAGE_NEXT}").click()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "page 2 of 5" in s["title"])
    dash_duo.wait_for_text_to_equal(f"#{explore.PAGE_LABEL}", "maps 65–128 of 300")
    assert dash_duo.driver.execute_script(META, explore.HEATMAP)["units"] == list(range(64, 128))
    until(lambda: query(dash_duo).get("page") == "2", 10, msg=f"no page=2 in {dash_duo.driver.current_url}")

    # most active first starts again from the first page; the next is the 65th to 128th most active
    dash_duo.find_element(f"#{explore.ORDER} input[value='active']").click()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "page 1 of 5, most active first" in s["title"])
    dash_duo.find_element(f"#{explore.PAGE_NEXT}").click()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "page 2 of 5, most active first" in s["title"])
    until(lambda: query(dash_duo).get("page") == "2" and query(dash_duo).get("order") == "active", 10,
          msg=f"no page=2&order=active in {dash_duo.driver.current_url}")
    expected = layer_outputs(served_context().store.get("many-maps"), MANY_MAPS_LAYER, [1])[0]  # [16, 16, 300]
    by_mean = np.argsort(-expected.astype(np.float64).mean(axis=(0, 1)), kind="stable")
    units = dash_duo.driver.execute_script(META, explore.HEATMAP)["units"]
    assert units == by_mean[64:128].tolist()

    # the hover over place 3 (row 0, column 3 of the page) names its true map, and Keras's value of the cell
    unit, (x, y) = units[3], (3 * 16 + 5, 7)
    first, second = exact_hover_label(dash_duo, explore.HEATMAP, x, y).split("\n")
    assert first == f"map {unit} · row 7, col 5"
    value = float(re.fullmatch(r"value (\S+)", second).group(1))
    assert np.float32(value) == pytest.approx(expected[7, 5, unit], rel=1e-5, abs=1e-6)

    # a click chooses that true map: its top images, unit= in the URL
    left, top = dash_duo.driver.execute_script(CELL_CENTRE, explore.HEATMAP, x, y)
    for kind in ("mousePressed", "mouseReleased"):
        dash_duo.driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": kind, "x": left, "y": top,
                                                                     "button": "left", "clickCount": 1})
    dash_duo.wait_for_contains_text(f"#{explore.UNIT_PANEL}", f"activate map {unit} of {MANY_MAPS_LAYER}", timeout=20)
    until(lambda: query(dash_duo).get("unit") == str(unit), 10, msg=f"no unit={unit} in {dash_duo.driver.current_url}")

    # the link reopens the same page in the same order, the map chosen
    link = dash_duo.driver.current_url
    dash_duo.wait_for_page(link)
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "page 2 of 5, most active first" in (s["title"] or ""), 30)
    dash_duo.wait_for_text_to_equal(f"#{explore.PAGE_LABEL}", "maps 65–128 of 300")
    assert dash_duo.driver.execute_script(META, explore.HEATMAP)["units"] == units
    dash_duo.wait_for_contains_text(f"#{explore.UNIT_PANEL}", f"activate map {unit} of {MANY_MAPS_LAYER}", timeout=20)

    # a link to map 250 (no page) opens the page holding it: 193-256 in model order, the map outlined
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=many-maps&layer={MANY_MAPS_LAYER}&image=1&unit=250")
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "page 4 of 5" in (s["title"] or ""), 30)
    dash_duo.wait_for_text_to_equal(f"#{explore.PAGE_LABEL}", "maps 193–256 of 300")
    outline = dash_duo.driver.execute_script(
        "return document.querySelector('#' + arguments[0] + ' .js-plotly-plot').layout.shapes[0];", explore.HEATMAP)
    place = 250 - 192
    assert (outline["x0"], outline["y0"]) == ((place % 8) * 16 - 0.5, (place // 8) * 16 - 0.5)
    assert outline.get("visible") is not False
    until(lambda: query(dash_duo).get("page") == "4", 10, msg=f"no page=4 in {dash_duo.driver.current_url}")

    # a layer of one page has no page controls and no page in its link
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=mnist-cnn&layer=Conv2D_3&image=1&page=3&order=active")
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "128 maps of image 1" in (s["title"] or ""), 30)
    until(lambda: not dash_duo.find_element(f"#{explore.PAGING}").is_displayed(), 10, msg="page controls shown")
    until(lambda: "page" not in query(dash_duo) and "order" not in query(dash_duo), 10,
          msg=f"a page in {dash_duo.driver.current_url}")
    assert dash_duo.get_logs() == []
