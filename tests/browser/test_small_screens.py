"""Every page at 800 x 900 (a small laptop window or a tablet): no horizontal scrolling, no cut dropdown text.

Run: ``.venv/bin/python -m pytest tests/browser/test_small_screens.py --headless``.
"""

from __future__ import annotations

import time

PORT = 8067
EXPLORE_PORT = 8196
PAGES = ("/", "/compare", "/finder", "/classes", "/why", "/train")

DRAWN = """
const graphs = Array.from(document.querySelectorAll('.dash-graph'));
return graphs.length > 0 && graphs.every(g => g.querySelector('.main-svg'));
"""

def open_drawn(dash_duo, path: str, timeout_s: float) -> None:
    """Open ``path`` and wait (up to ``timeout_s``) until every graph of the page is drawn and no callback runs."""
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}{path}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not dash_duo.driver.execute_script(DRAWN):
        time.sleep(0.2)
    dash_duo._wait_for_callbacks()


# The page's width against the window's, and what sticks out (for a useful failure message).
OVERFLOW = """
const width = window.innerWidth;
const wide = Array.from(document.querySelectorAll('body *'))
    .filter(el => el.getBoundingClientRect().right > width + 1 && el.getClientRects().length)
    .slice(0, 5).map(el => el.tagName + '#' + el.id + '.' + String(el.className).slice(0, 60));
return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide};
"""

# Dropdowns whose shown value is cut (its text is wider than its box).
CUT_DROPDOWNS = """
return Array.from(document.querySelectorAll('.dash-dropdown-value, .dash-dropdown-trigger span'))
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => el.textContent);
"""


# Every chart's texts (title, axis and colour-bar titles, tick labels) that are drawn outside their graph's box:
# cut off on the screen. Each as "graph id: text".
CUT_CHART_TEXT = """
const cut = [];
document.querySelectorAll('.js-plotly-plot').forEach(gd => {
    const box = gd.getBoundingClientRect();
    if (!box.width) { return; }
    const owner = (gd.closest('[id]') || gd).id;
    gd.querySelectorAll('.gtitle, .xtitle, .ytitle, .cbtitle text, .xtick text, .ytick text').forEach(text => {
        const r = text.getBoundingClientRect();
        if (r.width && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
                        || r.bottom > box.bottom + 1)) {
            cut.push(owner + ': ' + text.textContent);
        }
    });
});
return cut;
"""
# The story's pages in the states the README's tour opens them in.
STORY_PAGES = (
    "/?model=mnist-cnn&layer=Conv2D_2&image=663",
    "/compare?model=mnist-cnn&layer=Conv2D_3&images=663,3,18&unit=88",
    "/compare?model=mnist-cnn&layer=Conv2D_2&images=663,3,18,7,12&method=integrated_gradients&target=9",
    "/?model=mnist-cnn&layer=Conv2D_1&image=663&method=gradcam&target=9",
    "/finder?model=mnist-cnn&true=4&sort=likeness&prob=9",
    "/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9",
    "/why?model=mnist-cnn&layer=Dense_1&image=663&a=4&b=9",
    "/features?model=mnist-cnn&layer=Dense_2&image=663&unit=4",
    "/train",
)


def test_no_chart_text_is_cut_on_the_storys_pages_at_1400_and_800_px(dash_duo, app_store):
    from app.main import app

    dash_duo.start_server(app, port=EXPLORE_PORT + 3)
    cut = {}
    for width in (1400, 800):
        dash_duo.driver.set_window_size(width, 1000)
        for path in STORY_PAGES:
            open_drawn(dash_duo, path, 60)
            # the last figures of a page redraw once the callbacks answer, and a graph drawn before its card took
            # its width is resized by Plotly a moment later: a cut is one that lasts
            time.sleep(0.5)
            deadline = time.monotonic() + 5
            found = dash_duo.driver.execute_script(CUT_CHART_TEXT)
            while found and time.monotonic() < deadline:
                time.sleep(0.25)
                found = dash_duo.driver.execute_script(CUT_CHART_TEXT)
            if found:
                cut[(width, path)] = found
    assert cut == {}
    assert dash_duo.get_logs() == []


def test_every_page_fits_800_px_without_horizontal_scrolling(dash_duo, app_store):
    from app.main import app

    dash_duo.start_server(app, port=PORT)
    dash_duo.driver.set_window_size(800, 900)
    problems = {}
    for path in PAGES:
        open_drawn(dash_duo, path, 30)
        found = dash_duo.driver.execute_script(OVERFLOW)
        assert found["inner"] <= 800
        cut = dash_duo.driver.execute_script(CUT_DROPDOWNS)
        if found["scroll"] > found["inner"] or cut:
            problems[path] = {"overflow": found, "cut dropdown text": cut}
    assert problems == {}
    assert dash_duo.get_logs() == []


# Where an element ends, against the window's height (the fold).
BOTTOM = """
const box = document.getElementById(arguments[0]).getBoundingClientRect();
return {bottom: box.bottom, fold: window.innerHeight};
"""


def test_explore_shows_the_prediction_above_the_fold_of_a_1000_px_window(dash_duo, app_store):
    from app.main import app
    from app.pages import explore

    dash_duo.start_server(app, port=EXPLORE_PORT)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?model=mnist-cnn&layer=Conv2D_1&image=663")
    dash_duo.wait_for_contains_text(f"#{explore.PROBABILITIES}", "predicted 4", timeout=30)
    where = dash_duo.driver.execute_script(BOTTOM, explore.PROBABILITIES)
    assert where["bottom"] <= where["fold"], where
    assert dash_duo.get_logs() == []


# A chart's title and tick labels as a person reads them, and whether the title is drawn inside the chart.
CHART_TEXT = """
const graph = document.getElementById(arguments[0]);
const box = graph.getBoundingClientRect();
const title = graph.querySelector('.gtitle');
const titleBox = title.getBoundingClientRect();
return {width: box.width, top: box.top, title: title.textContent,
        titleInside: titleBox.left >= box.left - 1 && titleBox.right <= box.right + 1,
        ticks: Array.from(graph.querySelectorAll('.xtick text'), t => t.textContent)};
"""


def test_explore_at_800_px_puts_image_and_probabilities_side_by_side_above_the_grid(dash_duo, app_store):
    """800 px wide: the probabilities get half the width (every class labelled, the title whole), the grid the
    full width under them. 1400 px wide: the pad follows the probabilities in the left column; the navigation bar
    stays one line however full the compare basket is."""
    from app.main import app
    from app.pages import explore

    dash_duo.start_server(app, port=EXPLORE_PORT + 1)
    dash_duo.driver.set_window_size(1400, 1000)
    url = f"{dash_duo.server_url}/?model=mnist-cnn&layer=Conv2D_2&image=663"
    dash_duo.wait_for_page(url=url)
    dash_duo.wait_for_contains_text(f"#{explore.PROBABILITIES}", "predicted 4", timeout=30)
    empty_bar = dash_duo.driver.execute_script("return document.querySelector('nav').offsetHeight")
    probabilities = dash_duo.driver.execute_script(BOTTOM, explore.PROBABILITIES)
    pad_top = dash_duo.driver.execute_script(
        f"return document.getElementById('{explore.PAD.pad}').getBoundingClientRect().top")
    assert probabilities["bottom"] < pad_top < probabilities["bottom"] + 400  # not ~1,150 px down beside nothing
    dash_duo.driver.execute_script(
        "window.localStorage.setItem('app-basket', JSON.stringify([663, 4, 9, 12, 300, 7, 8, 2]));")

    dash_duo.driver.set_window_size(800, 1000)
    dash_duo.wait_for_page(url=url)
    dash_duo.wait_for_contains_text(f"#{explore.PROBABILITIES}", "predicted 4", timeout=30)
    dash_duo.wait_for_contains_text(f"#{explore.HEATMAP}", "64 maps of image 663", timeout=30)
    chart = dash_duo.driver.execute_script(CHART_TEXT, explore.PROBABILITIES)
    assert chart["width"] >= 300 and chart["titleInside"], chart
    assert chart["title"].startswith("predicted 4 (56.7%)") and chart["ticks"] == [str(k) for k in range(10)]
    grid = dash_duo.driver.execute_script(CHART_TEXT, explore.HEATMAP)
    assert grid["top"] > chart["top"] and grid["width"] >= 700, grid

    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.wait_for_text_to_equal(".basket > summary", "Basket (8/8)", timeout=10)
    assert dash_duo.driver.execute_script("return document.querySelector('nav').offsetHeight") == empty_bar
    dash_duo.find_element(".basket > summary").click()
    dash_duo.wait_for_text_to_equal(".basket-item[data-image='300']", "300 ×", timeout=5)
    assert dash_duo.get_logs() == []


TOP_LEFT = "const box = document.getElementById(arguments[0]).getBoundingClientRect(); return [box.top, box.left];"


def test_train_shows_the_runs_status_first_at_800_px_and_beside_the_form_at_1400(dash_duo, app_store):
    from app.main import app
    from app.pages import train
    from app.ui.training_form import FIELD

    dash_duo.start_server(app, port=EXPLORE_PORT + 2)
    for width in (800, 1400):
        dash_duo.driver.set_window_size(width, 1000)
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/train")
        dash_duo.wait_for_contains_text(f"#{train.STATUS}", "training job", timeout=30)
        status = dash_duo.driver.execute_script(TOP_LEFT, train.STATUS)
        form = dash_duo.driver.execute_script(TOP_LEFT, FIELD["name"])
        if width == 800:
            assert status[0] < form[0] and status[0] < 300, (status, form)  # the run before the long form
        else:
            assert form[1] < status[1] and abs(form[0] - status[0]) < 60, (status, form)  # side by side
    assert dash_duo.get_logs() == []
