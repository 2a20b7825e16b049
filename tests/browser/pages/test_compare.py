"""Browser tests of the compare page and the image finder (headless Debian chromium via dash_duo).

Run: ``.venv/bin/python -m pytest tests/browser/test_compare.py --headless``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from app import services
from app.core.contributions import contributions
from app.core.finder import ImageQuery, model_confusion, model_find_images

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


def test_compare_link_with_three_images_shares_one_colour_scale(dash_duo, app_store):
    from app.main import app

    images = [3, 12, 40]
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(
        url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_3&images=3,12,40&cmap=jet&a=3&b=40"
    )
    grids = "[id*='compare-grid'] .js-plotly-plot"
    dash_duo.wait_for_element_by_css_selector(grids, timeout=20)
    dash_duo._wait_for_callbacks()

    ranges = dash_duo.driver.execute_script(READ_RANGES, grids)
    assert len(ranges) == 3 and None not in ranges
    assert ranges[0] == ranges[1] == ranges[2]  # one scale for all three grids
    engine = services.store().get("mnist-cnn").engine
    values = np.stack([engine.activations("Conv2D_3", i) for i in images])
    assert ranges[0][0] == np.float32(values.min()) and abs(ranges[0][1] - values.max()) < 1e-4

    # the difference B - A is centred on 0: a symmetric range (plotly drops zmid once zmin/zmax are fixed)
    difference = dash_duo.driver.execute_script(READ_RANGES, "#compare-difference .js-plotly-plot")[0]
    bound = np.abs(engine.activations("Conv2D_3", 40) - engine.activations("Conv2D_3", 3)).max()
    assert difference[0] == -difference[1] and abs(difference[1] - bound) < 1e-3
    assert "images=3,12,40" in dash_duo.driver.current_url  # the URL keeps the view

    # a click on map 0 of the first grid lists the test images that activate it most
    click_cell(dash_duo, "[id*='compare-grid'] .js-plotly-plot", 1, 1)
    dash_duo.wait_for_contains_text("#compare-unit-panel", "map 0 of Conv2D_3", timeout=20)
    expected, _ = services.statistics().top_images(services.store().get("mnist-cnn"), "Conv2D_3", 0, 9)
    links = dash_duo.find_elements("#compare-unit-panel a[href*='image=']")
    shown = [linked_image(link) for link in links]
    assert shown == expected.tolist()
    assert dash_duo.get_logs() == []


def test_finder_confusion_cell_click_lists_exactly_its_images(dash_duo, app_store):
    from app.main import app

    loaded = services.store().get("mnist-cnn")
    matrix = model_confusion(loaded)
    off_diagonal = matrix - np.diag(np.diag(matrix))
    true_class, predicted_class = np.unravel_index(off_diagonal.argmax(), matrix.shape)  # the largest confusion
    expected = model_find_images(loaded, ImageQuery(int(true_class), int(predicted_class)))
    assert len(expected) >= 2

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/finder?model=mnist-cnn")
    dash_duo.wait_for_element_by_css_selector("#finder-confusion .js-plotly-plot", timeout=20)
    dash_duo.wait_for_contains_text("#finder-count", "1000 images match", timeout=20)

    click_cell(dash_duo, "#finder-confusion .js-plotly-plot", int(predicted_class), int(true_class))
    dash_duo.wait_for_text_to_equal("#finder-count", f"{len(expected)} images match", timeout=20)
    items = dash_duo.find_elements("#finder-gallery [data-image]")
    assert [int(item.get_attribute("data-image")) for item in items] == expected.tolist()
    boxes = dash_duo.find_elements("#finder-gallery input[type='checkbox']")
    assert f"true={true_class}&predicted={predicted_class}" in dash_duo.driver.current_url

    # picking two thumbnails offers them to the compare page
    boxes[0].click()
    boxes[1].click()
    dash_duo.wait_for_contains_text("#finder-compare-link", "Compare 2 picked images", timeout=10)
    href = dash_duo.find_element("#finder-compare-link a").get_attribute("href")
    assert f"images={expected[0]},{expected[1]}" in href
    assert dash_duo.get_logs() == []


def test_explorer_click_and_class_page_show_top_images_and_class_means(dash_duo, app_store):
    from app.main import app

    loaded = services.store().get("mnist-cnn")
    dash_duo.start_server(app, port=PORT)

    # explorer: a click on the first node of Dense_1 that fires (10 x 10 nodes: row 0; half of them are dead)
    node = next(n for n in range(10) if not services.statistics().is_dead(loaded, "Dense_1", n))
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?model=mnist-cnn&layer=Dense_1&image=5")
    dash_duo.wait_for_element_by_css_selector("#explore-heatmap .js-plotly-plot", timeout=20)
    dash_duo._wait_for_callbacks()
    click_cell(dash_duo, "#explore-heatmap .js-plotly-plot", node, 0)
    dash_duo.wait_for_contains_text("#explore-unit-panel", f"node {node} of Dense_1", timeout=20)
    expected, _ = services.statistics().top_images(loaded, "Dense_1", node, 9)
    links = dash_duo.find_elements("#explore-unit-panel a[href*='image=']")
    assert [linked_image(link) for link in links] == expected.tolist()

    # class page: mean 4 and mean 9 on one scale, and the MLP view's logits for image 5
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9&image=5")
    dash_duo.wait_for_contains_text("#classes-info", "all 100 test images of class 4", timeout=20)
    dash_duo.wait_for_contains_text("#classes-mlp-summary", "Dense_1 → Dense_2", timeout=20)
    ranges = dash_duo.driver.execute_script(READ_RANGES, "#classes-mean-a .js-plotly-plot, #classes-mean-b "
                                                         ".js-plotly-plot")
    means = services.statistics().class_means(loaded, "Conv2D_3").means
    assert ranges[0][:2] == ranges[1][:2]
    assert abs(ranges[0][1] - np.nanmax(means)) < 1e-3  # the scale spans every class's mean
    result = contributions(loaded, "Dense_1", 5, (4, 9))
    summary = dash_duo.find_element("#classes-mlp-summary").text
    assert f"{result.logits[0]:.4f}" in summary and f"{result.logits[1]:.4f}" in summary
    assert dash_duo.get_logs() == []
