"""Stepping through test images on Explore, drawn by the browser from the explorer-view route
(assets/image_stepping.js): twenty steps with the arrow key, each grid's title, caption, probabilities and a hovered
cell's exact value checked against the API; a fast burst of clicks ends on the last image clicked and stays there,
the URL following; a step the route cannot answer still shows the error.

Run: ``.venv/bin/python -m pytest tests/browser/test_image_stepping.py --headless``.
"""

from __future__ import annotations

import re
import shutil
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from tests.browser.helpers import exact_hover_label, figure_state, wait_for_figure

PORT = 8251
LAYER = "Conv2D_1"  # 26 x 26 maps, 8 to a row
PROBABILITIES = """
const gd = document.querySelector('#explore-probabilities .js-plotly-plot');
return Array.from(gd._fullData[0].y);
"""


def titled(image: int):
    """Whether a grid's state is the view of ``image`` (a whole word: image 1 is not image 12)."""
    return lambda state: re.search(rf"\bimage {image}\b", state["title"] or "") is not None


def image_in_url(dash_duo) -> str | None:
    return parse_qs(urlsplit(dash_duo.driver.current_url).query).get("image", [None])[0]


def test_stepping_draws_what_the_api_says_ends_on_the_last_click_and_still_shows_errors(dash_duo, app_store):
    from app.main import app, server
    from app.pages import explore

    api = server.test_client()
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=mnist-cnn&layer={LAYER}&image=0")
    wait_for_figure(dash_duo, explore.HEATMAP, titled(0), 30)

    # twenty steps with the keyboard: title, caption, probabilities and a hovered cell as the API gives them
    for image in range(1, 21):
        dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)
        wait_for_figure(dash_duo, explore.HEATMAP, titled(image))
        predicted = api.get(f"/api/models/mnist-cnn/predict?image={image}").get_json()
        dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", f"Image {image}: true class {predicted['label']}")
        assert wait_for_figure(dash_duo, explore.INPUT_IMAGE, lambda s: True)["title"].endswith(
            f"class {predicted['label']}")
        np.testing.assert_allclose(dash_duo.driver.execute_script(PROBABILITIES), predicted["probabilities"],
                                   rtol=1e-5, atol=1e-7)
        values = np.asarray(api.get(f"/api/models/mnist-cnn/activations?layer={LAYER}&image={image}")
                            .get_json()["values"], np.float32)
        unit, row, col = image % 32, (3 * image) % 26, (5 * image + 7) % 26
        x, y = (unit % 8) * 26 + col, (unit // 8) * 26 + row
        first, second = exact_hover_label(dash_duo, explore.HEATMAP, x, y).split("\n")
        assert first == f"map {unit} · row {row}, col {col}"
        assert np.float32(re.fullmatch(r"value (\S+)", second).group(1)) == values[row, col, unit]
    until(lambda: image_in_url(dash_duo) == "20", 10, msg=f"no image=20 in {dash_duo.driver.current_url}")
    # drawn from the explorer-view route, not by the render callback
    assert dash_duo.driver.execute_script("return performance.getEntriesByType('resource')"
                                          ".filter(entry => entry.name.includes('/explorer-view?')).length") >= 20

    # a burst of 15 clicks 30 ms apart, faster than a view is drawn: it ends on the last image clicked, and stays
    # there (clicks in one JavaScript task would reach Dash as one change of n_clicks: one step)
    dash_duo.driver.execute_script("""
        const button = document.getElementById(arguments[0]);
        let clicks = 0;
        const burst = setInterval(function () {
            button.click();
            if (++clicks === 15) { clearInterval(burst); }
        }, 30);""", explore.NEXT)
    wait_for_figure(dash_duo, explore.HEATMAP, titled(35))
    dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", "Image 35:")
    time.sleep(1.5)
    assert titled(35)(figure_state(dash_duo, explore.HEATMAP))
    assert dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("value") == "35"
    until(lambda: image_in_url(dash_duo) == "35", 10, msg=f"no image=35 in {dash_duo.driver.current_url}")

    # a step and at once another colormap: the grid and the link end on both, whichever answer came last
    dash_duo.find_element("body").send_keys(Keys.ARROW_LEFT)
    dash_duo.driver.execute_script("window.dash_clientside.set_props(arguments[0], {value: 'jet'});", explore.CMAP)
    until(lambda: image_in_url(dash_duo) == "34" and "cmap=jet" in dash_duo.driver.current_url, 10,
          msg=f"no image=34&cmap=jet in {dash_duo.driver.current_url}")
    jet = wait_for_figure(dash_duo, explore.HEATMAP, titled(34))["colorscale"]
    time.sleep(1)
    state = figure_state(dash_duo, explore.HEATMAP)
    assert titled(34)(state) and state["colorscale"] == jet and "cmap=jet" in dash_duo.driver.current_url
    assert jet == api.get("/api/models/mnist-cnn/explorer-view?layer=Conv2D_1&image=34&cmap=jet").get_json()[
        "heatmap"]["data"][0]["colorscale"]

    # a step the route cannot answer (the model deleted meanwhile) shows why, as any other change does: a random
    # image, since the next one was fetched ahead
    shutil.rmtree(app_store / "mnist-cnn")
    dash_duo.find_element("body").send_keys("r")
    dash_duo.wait_for_contains_text(f"#{explore.IDS.message}", "no model named 'mnist-cnn'", timeout=20)
    assert not [entry for entry in dash_duo.get_logs() or [] if entry["level"] == "SEVERE"
                and "explorer-view" not in entry["message"] and "_dash-update-component" not in entry["message"]]
