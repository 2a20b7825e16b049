"""Browser tests of the compare page and the image finder (headless Debian chromium via dash_duo).

Run: ``.venv/bin/python -m pytest tests/browser/test_compare.py --headless``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
from dash.testing.wait import until
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from app.core.finder import ImageQuery, model_confusion, model_find_images
from tests.app_context import served_context
from tests.browser.helpers import wait_for_figure

PORT = 8052

# The colour range of every rendered grid in true values, as plotly holds it (gd._fullData): zmin/zmax, or for a grid
# sent as colour codes (zmin 0, zmax 255) the range the codes span, from its meta.
READ_RANGES = """
return Array.from(document.querySelectorAll(arguments[0])).map(function (el) {
    var gd = el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
    if (!gd || !gd._fullData || !gd._fullData.length) { return null; }
    var trace = gd._fullData[0];
    if (trace.meta && trace.meta.range && trace.zmin === 0 && trace.zmax === trace.meta.levels) {
        return [trace.meta.range[0], trace.meta.range[1], null];
    }
    return [trace.zmin, trace.zmax, trace.zmid === undefined ? null : trace.zmid];
});
"""

# viewport coordinates of the centre of a heatmap cell (x, y in data units)
CELL_POSITION = """
var gd = document.querySelector(arguments[0]);
var xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
return [box.left + xa._offset + xa.l2p(arguments[1]), box.top + ya._offset + ya.l2p(arguments[2])];
"""


# Every panel of a figure of one unit across images: its image's name (the annotation under it), values and range.
PANELS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const names = gd._fullLayout.annotations.map(note => note.text);
return gd._fullData.map((trace, i) => ({name: names[i], zmin: trace.zmin, zmax: trace.zmax,
                                         z: Array.from(trace.z, row => Array.from(row))}));
"""


# The chosen unit's outline on each grid (its first shape, when shown): [x0, x1, y0, y1].
OUTLINES = """
return Array.from(document.querySelectorAll(arguments[0])).map(function (gd) {
    const shape = (gd.layout.shapes || [])[0];
    return shape && shape.visible !== false ? [shape.x0, shape.x1, shape.y0, shape.y1] : null;
});
"""


def linked_image(link) -> int:
    """The test image an explorer link opens (its ``image=`` parameter)."""
    return int(parse_qs(urlsplit(link.get_attribute("href")).query)["image"][0])


def click_cell(dash_duo, selector, x, y):
    """A real mouse click on a heatmap cell, so plotly's own click handling produces clickData."""
    left, top = dash_duo.driver.execute_script(CELL_POSITION, selector, x, y)
    actions = ActionBuilder(dash_duo.driver)
    actions.pointer_action.move_to_location(int(left), int(top))
    actions.pointer_action.pause(0.3)  # let plotly compute the hover point the click reports
    actions.pointer_action.click()
    actions.perform()


# A graph's title as shown, and whether it lies within the graph's box (not cut at either side).
TITLE_INSIDE = """
const graph = document.getElementById(arguments[0]);
const box = graph.getBoundingClientRect(), title = graph.querySelector('.gtitle').getBoundingClientRect();
return {text: graph.querySelector('.gtitle').textContent,
        inside: title.left >= box.left - 1 && title.right <= box.right + 1};
"""


def test_compare_link_with_three_images_shares_one_colour_scale(dash_duo, app_store):
    from app.main import app
    from app.pages import compare

    images = [3, 12, 40]
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(
        url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_3&images=3,12,40&cmap=jet&a=3&b=40"
    )
    grids = f"[id*='{compare.GRID}'] .js-plotly-plot"
    dash_duo.wait_for_element_by_css_selector(grids, timeout=20)
    dash_duo._wait_for_callbacks()

    ranges = dash_duo.driver.execute_script(READ_RANGES, grids)
    assert len(ranges) == 3 and None not in ranges
    assert ranges[0] == ranges[1] == ranges[2]  # one scale for all three grids
    engine = served_context().store.get("mnist-cnn").engine
    values = np.stack([engine.activations("Conv2D_3", i) for i in images])
    assert ranges[0][0] == np.float32(values.min()) and abs(ranges[0][1] - values.max()) < 1e-4

    # the difference B - A is centred on 0: a symmetric range (plotly drops zmid once zmin/zmax are fixed)
    difference = dash_duo.driver.execute_script(READ_RANGES, f"#{compare.DIFFERENCE} .js-plotly-plot")[0]
    bound = np.abs(engine.activations("Conv2D_3", 40) - engine.activations("Conv2D_3", 3)).max()
    assert difference[0] == -difference[1] and abs(difference[1] - bound) < 1e-3
    assert "images=3,12,40" in dash_duo.driver.current_url  # the URL keeps the view

    # a click on map 0 of the first grid outlines it on every grid and lists the test images that activate it most
    click_cell(dash_duo, grids, 1, 1)
    dash_duo.wait_for_contains_text(f"#{compare.UNIT_PANEL}", "map 0 of Conv2D_3", timeout=20)
    until(lambda: dash_duo.driver.execute_script(OUTLINES, grids) == [[-0.5, 2.5, -0.5, 2.5]] * 3, 10,
          msg="map 0 is not outlined on every grid")
    expected, _ = served_context().statistics.top_images(served_context().store.get("mnist-cnn"), "Conv2D_3", 0, 9)
    links = dash_duo.find_elements(f"#{compare.UNIT_PANEL} a[href*='image=']")
    shown = [linked_image(link) for link in links]
    assert shown == expected.tolist()

    # ... and shows map 0 large for every image, side by side on one scale, with B - A of that map; the link says so
    across = wait_for_figure(dash_duo, compare.UNIT_ACROSS_GRAPH, lambda state: "map 0 of Conv2D_3" in state["title"])
    panels = dash_duo.driver.execute_script(PANELS, compare.UNIT_ACROSS_GRAPH)
    assert [panel["name"] for panel in panels] == ["#3", "#12", "#40"]
    for panel, image in zip(panels, images, strict=True):
        np.testing.assert_allclose(panel["z"], engine.activations("Conv2D_3", image)[..., 0], atol=1e-5)
        assert (panel["zmin"], panel["zmax"]) == (panels[0]["zmin"], panels[0]["zmax"])
    assert across["title"] == "map 0 of Conv2D_3 in every image · one colour scale"
    difference = wait_for_figure(dash_duo, compare.UNIT_DIFFERENCE_GRAPH, lambda state: "#40 − #3" in state["title"])
    assert "map 0" in difference["title"]
    until(lambda: "unit=0" in dash_duo.driver.current_url, 10, msg="the chosen map never reached the URL")

    # 800 px, five images: two grids to a row, each wide enough to read, and the one-map title whole
    dash_duo.driver.set_window_size(800, 1000)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_2&images=663,988,4,7,12"
                               "&unit=30")
    wait_for_figure(dash_duo, compare.UNIT_ACROSS_GRAPH, lambda state: "map 30 of Conv2D_2" in state["title"])
    widths = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), g => g.getBoundingClientRect().width);", grids)
    assert len(widths) == 5 and min(widths) >= 300, widths
    title = dash_duo.driver.execute_script(TITLE_INSIDE, compare.UNIT_ACROSS_GRAPH)
    assert title["inside"] and title["text"] == "map 30 of Conv2D_2 in every image · one colour scale", title

    # "where the model looks" is part of the view: a link opens every card's overlay for the class it names
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_3&images=663,3"
                               "&method=gradcam&target=9")
    inputs = f"[id*='{compare.INPUT}'] .js-plotly-plot"
    until(lambda: dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), g => g.layout.title.text);", inputs)
        == ["Grad-CAM · class 9"] * 2, 30, msg="the overlays of the link's method and class")
    until(lambda: "method=gradcam&target=9" in dash_duo.driver.current_url, 10)
    assert dash_duo.get_logs() == []


def test_finder_confusion_cell_click_lists_exactly_its_images(dash_duo, app_store):
    from app.main import app
    from app.pages import finder

    loaded = served_context().store.get("mnist-cnn")
    matrix = model_confusion(loaded)
    off_diagonal = matrix - np.diag(np.diag(matrix))
    true_class, predicted_class = np.unravel_index(off_diagonal.argmax(), matrix.shape)  # the largest confusion
    expected = model_find_images(loaded, ImageQuery(int(true_class), int(predicted_class)))
    assert len(expected) >= 2

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/finder?model=mnist-cnn")
    dash_duo.wait_for_element_by_css_selector(f"#{finder.CONFUSION} .js-plotly-plot", timeout=20)
    dash_duo.wait_for_contains_text(f"#{finder.COUNT}", "1000 images match", timeout=20)

    click_cell(dash_duo, f"#{finder.CONFUSION} .js-plotly-plot", int(predicted_class), int(true_class))
    dash_duo.wait_for_text_to_equal(f"#{finder.COUNT}", f"{len(expected)} images match", timeout=20)
    items = dash_duo.find_elements(f"#{finder.GALLERY} [data-image]")
    assert [int(item.get_attribute("data-image")) for item in items] == expected.tolist()
    boxes = dash_duo.find_elements(f"#{finder.GALLERY} input[type='checkbox']")
    assert f"true={true_class}&predicted={predicted_class}" in dash_duo.driver.current_url

    # picking two thumbnails offers them to the compare page
    boxes[0].click()
    boxes[1].click()
    dash_duo.wait_for_contains_text(f"#{finder.COMPARE_LINK}", "Compare 2 picked images", timeout=10)
    href = dash_duo.find_element(f"#{finder.COMPARE_LINK} a").get_attribute("href")
    assert f"images={expected[0]},{expected[1]}" in href
    assert dash_duo.get_logs() == []


def test_explorer_click_and_class_page_show_top_images_and_class_means(dash_duo, app_store):
    from app.main import app
    from app.pages import classes, explore

    loaded = served_context().store.get("mnist-cnn")
    dash_duo.start_server(app, port=PORT)

    # explorer: a click on the first node of Dense_1 that fires (10 x 10 nodes: row 0; half of them are dead)
    node = next(n for n in range(10) if not served_context().statistics.is_dead(loaded, "Dense_1", n))
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?model=mnist-cnn&layer=Dense_1&image=5")
    dash_duo.wait_for_element_by_css_selector(f"#{explore.HEATMAP} .js-plotly-plot", timeout=20)
    dash_duo._wait_for_callbacks()
    click_cell(dash_duo, f"#{explore.HEATMAP} .js-plotly-plot", node, 0)
    dash_duo.wait_for_contains_text(f"#{explore.UNIT_PANEL}", f"node {node} of Dense_1", timeout=20)
    expected, _ = served_context().statistics.top_images(loaded, "Dense_1", node, 9)
    links = dash_duo.find_elements(f"#{explore.UNIT_PANEL} a[href*='image=']")
    assert [linked_image(link) for link in links] == expected.tolist()

    # class page: mean 4 and mean 9 on one scale, and its link to the MLP view of image 5 with the two classes
    # (the MLP view itself: tests/browser/pages/test_why.py)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9&image=5")
    dash_duo.wait_for_contains_text(f"#{classes.INFO}", "all 100 test images of class 4", timeout=20)
    dash_duo.wait_for_contains_text(f"#{classes.WHY}", "Why this prediction? (image 5)", timeout=20)
    # the two grids are drawn once Plotly has loaded, which may come after the texts above
    mean_grids = f"#{classes.MEAN_A} .js-plotly-plot, #{classes.MEAN_B} .js-plotly-plot"
    drawn = {}

    def both_drawn():
        drawn["ranges"] = dash_duo.driver.execute_script(READ_RANGES, mean_grids)
        return len(drawn["ranges"]) == 2 and None not in drawn["ranges"]

    until(both_drawn, 20, msg=f"the two class means were never drawn: {drawn}")
    ranges = drawn["ranges"]
    means = served_context().statistics.class_means(loaded, "Conv2D_3").means
    assert ranges[0][:2] == ranges[1][:2]
    assert abs(ranges[0][1] - np.nanmax(means)) < 1e-3  # the scale spans every class's mean
    link = dash_duo.find_element(f"#{classes.WHY} a").get_attribute("href")
    assert link.endswith("/why?model=mnist-cnn&image=5&a=4&b=9")
    assert dash_duo.get_logs() == []
