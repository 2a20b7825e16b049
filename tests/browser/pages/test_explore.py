"""The explorer in headless chromium: a link opens a view; layer, image and colormap changes redraw it."""

from tests.browser.helpers import choose_option, figure_state, grid_shape, wait_for_figure

PORT = 8051


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
    assert grid_shape(third) == (48, 24)
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
    assert dash_duo.get_logs() == []
