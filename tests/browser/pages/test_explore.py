"""The explorer in headless chromium: a link opens a view; layer, image and colormap changes redraw it."""

import pytest
from dash.testing.wait import until

from tests.app_context import served_context
from tests.browser.helpers import choose_option, figure_state, grid_shape, wait_for_figure

PORT = 8051
# The grid's colour range in true values (from its meta when it is sent as colour codes) and its colour bar's title.
COLOUR_SCALE = """
const trace = document.querySelector('#' + arguments[0] + ' .js-plotly-plot')._fullData[0];
const range = trace.meta && trace.meta.range ? trace.meta.range : [trace.zmin, trace.zmax];
return {range: range, title: trace.colorbar.title.text};
"""


def test_explore_link_layer_image_and_colormap_changes_update_figures(dash_duo, app_store):
    from app.main import app
    from app.pages import explore

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=mnist-cnn&layer=Conv2D_1&image=3&cmap=jet")

    first = wait_for_figure(dash_duo, explore.HEATMAP, lambda s: s["z"] is not None)
    assert grid_shape(first) == (104, 208) and "32 maps of image 3" in first["title"]
    assert first["colorscale"][0][1] == "rgb(0,0,131)"  # jet starts dark blue
    bars = wait_for_figure(dash_duo, explore.PROBABILITIES, lambda s: s["y"] is not None)
    assert abs(sum(bars["y"]) - 1) < 1e-3

    choose_option(dash_duo, f"#{explore.LAYER}", "Conv2D_3 · 3×3×128")
    third = wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "128 maps" in s["title"])
    assert grid_shape(third) == (33, 36)  # 128 maps of 3x3, 12 to a row
    choose_option(dash_duo, f"#{explore.LAYER}", "Dense_1 · 100")
    dense = wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "100 nodes" in s["title"])
    assert grid_shape(dense) == (10, 10)

    dash_duo.find_element(f"#{explore.NEXT}").click()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "image 4" in s["title"])
    new_bars = wait_for_figure(dash_duo, explore.PROBABILITIES, lambda s: s["y"] != bars["y"])
    assert abs(sum(new_bars["y"]) - 1) < 1e-3
    assert figure_state(dash_duo, explore.HEATMAP)["z"] != dense["z"]

    choose_option(dash_duo, f"#{explore.CMAP}", "magma")
    magma = wait_for_figure(dash_duo, explore.HEATMAP, lambda s: s["colorscale"] != first["colorscale"])
    assert magma["colorscale"][0][1] == "#000004" and magma["colorscale"][-1][1] == "#fcfdbf"
    assert dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("value") == "4"

    url = dash_duo.driver.current_url
    assert "layer=Dense_1" in url and "image=4" in url and "cmap=magma" in url
    dash_duo.wait_for_page(url)  # the link reopens the same view
    reopened = wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "100 nodes of image 4" in s["title"])
    assert reopened["z"] == figure_state(dash_duo, explore.HEATMAP)["z"]
    assert dash_duo.driver.execute_script(COLOUR_SCALE, explore.HEATMAP)["title"] == "activation"

    # a fixed scale: the layer's test-set percentiles on every image, in the link too
    dash_duo.find_element(f"#{explore.FIXED}").click()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "fixed scale" in s["title"])
    loaded = served_context().store.get("mnist-cnn")
    expected = served_context().statistics.layer_range(loaded, "Dense_1")
    assert dash_duo.driver.execute_script(COLOUR_SCALE, explore.HEATMAP)["range"] == pytest.approx(expected)
    dash_duo.find_element(f"#{explore.NEXT}").click()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "image 5" in s["title"])
    assert dash_duo.driver.execute_script(COLOUR_SCALE, explore.HEATMAP)["range"] == pytest.approx(expected)
    until(lambda: "fixed=1" in dash_duo.driver.current_url, 10, msg="the fixed scale never reached the link")

    # where the model looks is in the link as well
    choose_option(dash_duo, f"#{explore.ATTRIBUTION_METHOD}", "Grad-CAM")
    until(lambda: "method=gradcam" in dash_duo.driver.current_url, 10, msg="the method never reached the link")

    # the link reopens all of it in a narrow window too, and the navigation's Features link keeps the place
    link = dash_duo.driver.current_url
    for width, height in ((1400, 1000), (800, 1000)):
        dash_duo.driver.set_window_size(width, height)
        dash_duo.wait_for_page(link)
        wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "fixed scale" in s["title"] and "image 5" in s["title"])
        assert dash_duo.driver.execute_script(COLOUR_SCALE, explore.HEATMAP)["range"] == pytest.approx(expected)
        dash_duo.wait_for_contains_text(f"#{explore.ATTRIBUTION_METHOD}", "Grad-CAM", timeout=10)
        until(lambda: "layer=Dense_1" in (dash_duo.find_element("a.nav-link[href^='/features']")
                                          .get_attribute("href") or "")
              and "image=5" in dash_duo.find_element("a.nav-link[href^='/features']").get_attribute("href"), 10,
              msg=f"the navigation's Features link lost the place at {width} px")
    assert dash_duo.get_logs() == []
