"""Browser test of the Features page (headless Debian chromium via dash_duo).

Run: ``.venv/bin/python -m pytest tests/browser/pages/test_features.py --headless``.
"""

from __future__ import annotations

from dash.testing.wait import until

from tests.browser.helpers import wait_for_figure
from tests.browser.pages.test_compare import click_cell

PORT = 8056
ATTRIBUTION_TITLES = """
return Array.from(document.querySelectorAll('#features-attribution .js-plotly-plot'))
    .map(function (gd) { return gd._fullLayout.title.text; });
"""


def test_features_grid_computes_in_the_background_then_a_click_shows_the_unit(dash_duo, app_state):
    from app.main import app

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/features?model=mnist-cnn&layer=Dense_2&image=12")
    # first the progress of the background job, then the grid: 10 optimal inputs of 28x28 in one strip
    dash_duo.wait_for_contains_text("#features-progress", "in the background", timeout=20)
    state = wait_for_figure(dash_duo, "features-grid", lambda s: s["z"] is not None, timeout=120)
    assert (len(state["z"]), len(state["z"][0])) == (28, 280)
    assert "optimal input of each node of Dense_2" in state["title"]

    click_cell(dash_duo, "#features-grid .js-plotly-plot", 3 * 28 + 14, 14)
    dash_duo.wait_for_contains_text("#features-unit", "Node 3 of Dense_2", timeout=20)
    dash_duo.wait_for_contains_text("#features-unit", "Test images that activate node 3", timeout=20)
    until(lambda: len(dash_duo.find_elements("#features-unit .js-plotly-plot")) >= 2, 10)

    # the attribution of image 12 for its predicted class, then class 4 and class 9 side by side
    until(lambda: len(dash_duo.find_elements("#features-attribution .js-plotly-plot")) == 1, 20)
    # a script click: selenium's pointer click on the checkbox is intercepted by another element of the page
    dash_duo.driver.execute_script("arguments[0].click();", dash_duo.find_element("#features-pair"))
    until(lambda: len(dash_duo.find_elements("#features-attribution .js-plotly-plot")) == 2, 20)
    titles = dash_duo.driver.execute_script(ATTRIBUTION_TITLES)
    assert "class 4" in titles[0] and "class 9" in titles[1], titles
    assert dash_duo.get_logs() == []
