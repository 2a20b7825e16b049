""""Why this prediction?" in headless chromium, at 1400 x 1000 and 800 x 1000: opened from Explore's link (and
Compare's, and an old Classes link), it shows the image's prediction and the three contribution charts above the
fold, steps to the next image, and the Classes page's titles fit their charts.

Run: ``.venv/bin/python -m pytest tests/browser/pages/test_why.py --headless``.
"""

from __future__ import annotations

import numpy as np
from dash.testing.wait import until

from app.core.contributions import contributions
from tests.app_context import served_context
from tests.browser.helpers import figure_state, wait_for_figure

PORT = 8211
WINDOWS = ((1400, 1000), (800, 1000))

# Where a graph sits in the page (document coordinates, as on a page scrolled to the top) against the window's
# height, and how far its plot area (the grid, not the empty room around it) reaches down.
PLACE = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const box = gd.getBoundingClientRect(), y = gd._fullLayout.yaxis;
return {top: box.top + window.scrollY, plot_bottom: box.top + window.scrollY + y._offset + y._length,
        fold: window.innerHeight};
"""

# Each graph's title: its text and how far its box stays inside the graph's box on the left and on the right.
TITLES = """
return arguments[0].map(id => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    const title = gd.querySelector('.gtitle'), box = gd.getBoundingClientRect();
    const text = title.getBoundingClientRect();
    return {id: id, text: title.textContent, left: text.left - box.left, right: box.right - text.right,
            lines: title.querySelectorAll('tspan.line').length || 1};
});
"""


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page's viewport (not the window around it, whose frame the browser draws) ``width`` x ``height``."""
    driver.set_window_size(width, height)
    inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner_width, 2 * height - inner_height)


def test_why_opens_from_explores_link_shows_the_charts_above_the_fold_and_steps_to_the_next_image(dash_duo,
                                                                                                   app_store):
    from app.main import app
    from app.pages import explore, why

    loaded = served_context().store.get("mnist-cnn")
    dash_duo.start_server(app, port=PORT)
    for width, height in WINDOWS:
        set_viewport(dash_duo.driver, width, height)
        # the blog's 4 that looks like a 9: predicted 4, with 9 the runner-up
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?model=mnist-cnn&layer=Conv2D_3&image=663")
        dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", "Why this prediction?", timeout=30)
        link = next(a for a in dash_duo.find_elements(f"#{explore.IMAGE_INFO} a") if a.text == "Why this prediction?")
        assert link.get_attribute("href").endswith("/why?model=mnist-cnn&image=663")
        link.click()

        dash_duo.wait_for_contains_text(f"#{why.HEADING}", "Image 663: true class 4, predicted 4", timeout=30)
        titles = {graph: wait_for_figure(dash_duo, graph, lambda s: s["z"] is not None, timeout=20)["title"]
                  for graph in (why.CHART_A, why.CHART_B, why.DIFFERENCE)}
        assert titles == {why.CHART_A: "contributions to class 4", why.CHART_B: "contributions to class 9",
                          why.DIFFERENCE: "class 4 − class 9"}, width
        bars = wait_for_figure(dash_duo, why.PROBABILITIES, lambda s: s["y"] is not None)
        np.testing.assert_allclose(bars["y"], loaded.engine.probabilities(663), rtol=1e-4, atol=1e-6)
        result = contributions(loaded, "Dense_1", 663, (4, 9))
        summary = dash_duo.find_element(f"#{why.SUMMARY}").text
        assert "Dense_1 → Dense_2" in summary
        assert f"{result.logits[0]:.4f}" in summary and f"{result.logits[1]:.4f}" in summary
        for graph in (why.CHART_A, why.CHART_B, why.DIFFERENCE):
            place = dash_duo.driver.execute_script(PLACE, graph)
            # the charts open the page: each chart's grid ends above the fold of a 1000 px high window
            assert place["fold"] == height and place["plot_bottom"] <= place["fold"], (width, graph, place)

        before = figure_state(dash_duo, why.CHART_A)["z"]
        dash_duo.find_element(f"#{why.NEXT}").click()
        dash_duo.wait_for_contains_text(f"#{why.HEADING}", "Image 664: true class", timeout=20)
        until(lambda: "image=664" in dash_duo.driver.current_url, 10)
        wait_for_figure(dash_duo, why.CHART_A, lambda s, before=before: s["z"] != before, timeout=20)
        assert dash_duo.find_element(f"#{why.IMAGE}").get_attribute("value") == "664"
    assert dash_duo.get_logs() == []


def test_compare_cards_and_an_old_classes_link_lead_to_why_and_classes_titles_fit_800_px(dash_duo, app_store):
    from app.main import app
    from app.pages import classes, compare, why

    dash_duo.start_server(app, port=PORT + 1)
    set_viewport(dash_duo.driver, 800, 1000)

    # every Compare card's heading links to its image's "Why this prediction?"
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_3&images=663,12")
    dash_duo.wait_for_contains_text(f"#{compare.CARDS}", "#12", timeout=30)
    hrefs = [a.get_attribute("href") for a in dash_duo.find_elements(f"#{compare.CARDS} a") if a.text == "why?"]
    assert [href.split("/why", 1)[1] for href in hrefs] == ["?model=mnist-cnn&image=663", "?model=mnist-cnn&image=12"]

    # an old link to the MLP view, from when it lived on Classes: the page offers to open it, classes carried over
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9&mlp=Dense_1"
                               "&image=12")
    dash_duo.wait_for_contains_text(f"#{classes.INFO}", "all 100 test images of class 4", timeout=30)
    for graph in (classes.MEAN_A, classes.MEAN_B, classes.DIFFERENCE, classes.RANKING):
        wait_for_figure(dash_duo, graph, lambda s: s["z"] is not None or s["y"] is not None, timeout=20)
    found = dash_duo.driver.execute_script(TITLES, [classes.MEAN_A, classes.MEAN_B, classes.DIFFERENCE,
                                                    classes.RANKING])
    clipped = [title for title in found if title["left"] < 0 or title["right"] < 0]
    assert clipped == [], clipped
    texts = {title["id"]: title["text"] for title in found}
    assert texts[classes.DIFFERENCE] == "mean 4 − mean 9(red: stronger for 4)"  # two lines, no space between
    assert texts[classes.MEAN_A] == "mean of class 4 · Conv2D_3"

    dash_duo.wait_for_contains_text(f"#{classes.WHY}", "Why this prediction? (image 12)", timeout=10)
    notice = next(a for a in dash_duo.find_elements(f"#{classes.IDS.notice} a")
                  if a.text == "Open the MLP view of image 12")
    notice.click()
    dash_duo.wait_for_contains_text(f"#{why.HEADING}", "Image 12: true class", timeout=30)
    wait_for_figure(dash_duo, why.CHART_B, lambda s: s["title"] == "contributions to class 9", timeout=20)
    until(lambda: "layer=Dense_1&image=12&a=4&b=9" in dash_duo.driver.current_url, 10)
    assert dash_duo.get_logs() == []
