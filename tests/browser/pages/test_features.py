"""Browser test of the Features page (headless Debian chromium via dash_duo).

Run: ``.venv/bin/python -m pytest tests/browser/pages/test_features.py --headless``.
"""

from __future__ import annotations

from dash.testing.wait import until

from tests.browser.helpers import wait_for_figure
from tests.browser.pages.test_compare import click_cell
from tests.browser.test_small_screens import CUT_CHART_TEXT

PORT = 8056
ATTRIBUTION_TITLES = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' .js-plotly-plot'))
    .map(function (gd) { return gd._fullLayout.title.text; });
"""
# Each attribution figure as drawn: its title, its overlay's opacity, and what its colour bar says (the lines of
# its rendered title, joined by spaces).
ATTRIBUTION_OVERLAYS = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' .js-plotly-plot')).map(function (gd) {
    var lines = Array.from(gd.querySelectorAll('.colorbar .cbtitle tspan.line')).map(function (line) {
        return line.textContent;
    });
    return {title: gd._fullLayout.title.text, opacity: gd._fullData[1].opacity,
            colorbar: gd._fullData[1].colorbar.title.text, drawn: lines.join(' ')};
});
"""


def test_features_grid_computes_in_the_background_then_a_click_shows_the_unit(dash_duo, app_state):
    from app.main import app
    from app.pages import features

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/features?model=mnist-cnn&layer=Dense_2&image=12")
    # first the progress of the background job, then the grid: 10 optimal inputs of 28x28 in one strip
    dash_duo.wait_for_contains_text(f"#{features.PROGRESS}", "in the background", timeout=20)
    state = wait_for_figure(dash_duo, features.GRID, lambda s: s["z"] is not None, timeout=120)
    assert (len(state["z"]), len(state["z"][0])) == (28, 280)
    assert "optimal input of each node of Dense_2" in state["title"]

    click_cell(dash_duo, f"#{features.GRID} .js-plotly-plot", 3 * 28 + 14, 14)
    dash_duo.wait_for_contains_text(f"#{features.UNIT}", "Node 3 of Dense_2", timeout=20)
    dash_duo.wait_for_contains_text(f"#{features.UNIT}", "Test images that activate node 3", timeout=20)
    until(lambda: len(dash_duo.find_elements(f"#{features.UNIT} .js-plotly-plot")) >= 2, 10)
    until(lambda: "unit=3" in dash_duo.driver.current_url, 10, msg="the chosen unit never reached the URL")
    # the link reopens the chosen unit
    dash_duo.wait_for_page(url=dash_duo.driver.current_url)
    dash_duo.wait_for_contains_text(f"#{features.UNIT}", "Node 3 of Dense_2", timeout=30)

    # the attribution of image 12 for its predicted class, then class 4 and class 9 side by side
    until(lambda: len(dash_duo.find_elements(f"#{features.ATTRIBUTION} .js-plotly-plot")) == 1, 20)
    # a script click: selenium's pointer click on the checkbox is intercepted by another element of the page
    dash_duo.driver.execute_script("arguments[0].click();", dash_duo.find_element(f"#{features.PAIR}"))
    until(lambda: len(dash_duo.find_elements(f"#{features.ATTRIBUTION} .js-plotly-plot")) == 2, 20)
    titles = dash_duo.driver.execute_script(ATTRIBUTION_TITLES, features.ATTRIBUTION)
    assert "class 4" in titles[0] and "class 9" in titles[1], titles
    assert dash_duo.get_logs() == []


def test_an_attribution_link_opens_its_pair_of_classes_with_titled_overlays(dash_duo, app_state):
    from app.main import app
    from app.pages import features

    dash_duo.start_server(app, port=PORT)
    for width in (1400, 800):
        dash_duo.driver.set_window_size(width, 1000)
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/features?model=mnist-cnn&layer=Dense_2&image=12"
                                   "&method=integrated_gradients&pair=1&pair_a=3&pair_b=8")
        until(lambda: len(dash_duo.find_elements(f"#{features.ATTRIBUTION} .js-plotly-plot")) == 2, 60)
        shown = dash_duo.driver.execute_script(ATTRIBUTION_OVERLAYS, features.ATTRIBUTION)
        assert "class 3" in shown[0]["title"] and "class 8" in shown[1]["title"], (width, shown)
        for figure in shown:
            assert figure["opacity"] == 0.55
            assert figure["colorbar"].replace("<br>", " ") == figure["drawn"], (width, figure)
            assert figure["drawn"] == "integrated gradients (contribution to the logit)", (width, figure)
            assert "<br>attributions add up to the logit change from" in figure["title"], (width, figure)
            assert "attributions add up to the logit change from black: " in figure["title"].replace("<br>", " ")
        # the sentence is drawn as words on the page (wrapped to the chart), not only held in the figure
        drawn = " ".join(text.text for text in dash_duo.find_elements(f"#{features.ATTRIBUTION} .gtitle tspan"))
        assert "attributions add up to the logit change from black: " in drawn, (width, drawn)
        assert dash_duo.driver.execute_script(CUT_CHART_TEXT) == [], width
        assert dash_duo.find_element(f"#{features.PAIR_A}").text == "3"
        assert dash_duo.find_element(f"#{features.PAIR_B}").text == "8"
    assert dash_duo.get_logs() == []
