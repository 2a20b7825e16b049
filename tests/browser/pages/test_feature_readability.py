"""Browser test: what a person reads on Features and Explore about units (headless chromium via dash_duo).

The progress of a layer's background job in words, every optimal input and kernel numbered, the clicked unit's
top test images cropped to its receptive field under a title that says so, and Explore's dead units marked with a
sentence under the grid. Run: ``.venv/bin/python -m pytest tests/browser/pages/test_feature_readability.py
--headless``.
"""

from __future__ import annotations

import re
import time

from dash.testing.wait import until

from tests.browser.pages.test_compare import click_cell

PORT = 8201
# The texts drawn in a graph's annotations (SVG text a person sees), in order.
DRAWN_NOTES = """
return Array.from(document.querySelectorAll(arguments[0] + ' .annotation-text')).map(t => t.textContent);
"""
DRAWN_TITLE = """
return Array.from(document.querySelectorAll(arguments[0] + ' .gtitle')).map(t => t.textContent).join(' ');
"""


def test_feature_tiles_kernels_and_crops_read_as_numbers_and_titles(dash_duo, app_state):
    from app.main import app
    from app.pages import features

    dash_duo.start_server(app, port=PORT)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/features?model=mnist-cnn&layer=Conv2D_1")
    # while it runs: a sentence, never "(starting, starting)"
    dash_duo.wait_for_contains_text(f"#{features.PROGRESS}", "Conv2D_1", timeout=20)
    progress = dash_duo.find_element(f"#{features.PROGRESS}").text
    assert "starting, starting" not in progress
    assert re.search(r"starting a background process|never fire|step \d+ of \d+", progress), progress

    grid = f"#{features.GRID}"
    until(lambda: len(dash_duo.driver.execute_script(DRAWN_NOTES, grid)) == 32, 180)
    assert dash_duo.driver.execute_script(DRAWN_NOTES, grid) == [str(k) for k in range(32)]
    kernels = f"#{features.KERNELS}"
    until(lambda: len(dash_duo.driver.execute_script(DRAWN_NOTES, kernels)) == 32, 20)
    assert dash_duo.driver.execute_script(DRAWN_NOTES, kernels) == [str(k) for k in range(32)]
    assert "weight" in [t.text for t in dash_duo.find_elements(f"{kernels} .colorbar .cbtitle text")]
    # the kernels are a block of squares, not a strip: their plot area is taller than wide
    width, height = dash_duo.driver.execute_script(
        "var box = document.querySelector(arguments[0] + ' .nsewdrag').getBoundingClientRect();"
        "return [box.width, box.height];", kernels)
    assert height > width > 150, (width, height)

    # map 9 (row 1, column 1 of 28x28 tiles): its top test images cut to its 3x3 receptive field
    click_cell(dash_duo, f"{grid} .js-plotly-plot", 28 + 14, 28 + 14)
    dash_duo.wait_for_contains_text(f"#{features.UNIT}", "Map 9 of Conv2D_1", timeout=30)
    crops = f"#{features.CROPS}"
    until(lambda: len(dash_duo.driver.execute_script(DRAWN_NOTES, crops)) == 9, 30)
    assert "top 9 test images of map 9, cropped to its 3×3 px receptive field around its peak" in (
        dash_duo.driver.execute_script(DRAWN_TITLE, crops))
    assert all(re.fullmatch(r"#\d+", note) for note in dash_duo.driver.execute_script(DRAWN_NOTES, crops))

    # the same reading at 800 px, from the link that names the unit (the layer's job already done)
    dash_duo.driver.set_window_size(800, 1000)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/features?model=mnist-cnn&layer=Conv2D_1&unit=9")
    until(lambda: dash_duo.driver.execute_script(DRAWN_NOTES, grid) == [str(k) for k in range(32)], 30)
    until(lambda: dash_duo.driver.execute_script(DRAWN_NOTES, kernels) == [str(k) for k in range(32)], 20)
    width, height = dash_duo.driver.execute_script(
        "var box = document.querySelector(arguments[0] + ' .nsewdrag').getBoundingClientRect();"
        "return [box.width, box.height];", kernels)
    assert height > width > 150, (width, height)
    dash_duo.wait_for_contains_text(f"#{features.UNIT}", "Map 9 of Conv2D_1", timeout=30)
    until(lambda: len(dash_duo.driver.execute_script(DRAWN_NOTES, crops)) == 9, 30)
    assert "top 9 test images of map 9, cropped to its 3×3 px receptive field around its peak" in (
        dash_duo.driver.execute_script(DRAWN_TITLE, crops))
    assert dash_duo.get_logs() == []


# Pixels between the bottom of a grid's last row and the top of the dead-unit sentence drawn under it.
SENTENCE_BELOW_GRID = """
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
const ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
const rows = gd._fullData[0].z.length;  // the grid's rows of cells: its last one ends at y = rows - 0.5
const gridBottom = box.top + ya._offset + ya.c2p(rows - 0.5);
const sentence = Array.from(gd.querySelectorAll('.annotation')).find(a => a.textContent.includes('never fire'));
return sentence.getBoundingClientRect().top - gridBottom;
"""


def test_explore_says_which_units_are_dead(dash_duo, app_state):
    from app.main import app
    from app.pages import explore

    dash_duo.start_server(app, port=PORT + 1)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?model=mnist-cnn&layer=Dense_1&image=3")
    heatmap = f"#{explore.HEATMAP}"
    until(lambda: len(dash_duo.driver.execute_script(DRAWN_NOTES, heatmap)) > 0, 30)
    notes = dash_duo.driver.execute_script(DRAWN_NOTES, heatmap)
    assert notes.count("dead") == 51
    assert "51 of 100 nodes never fire on the test set (marked dead)" in notes
    # right under the tiles it counts, not at the bottom of the figure around them: in a window taller than wide
    # the square grid ends ~300 px above its figure's bottom
    for width, height in ((1400, 1000), (800, 1400)):
        dash_duo.driver.set_window_size(width, height)
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?model=mnist-cnn&layer=Dense_1&image=3")
        until(lambda: len(dash_duo.driver.execute_script(DRAWN_NOTES, heatmap)) > 0, 30)
        time.sleep(0.5)  # the figure settles into its new width
        gap = dash_duo.driver.execute_script(SENTENCE_BELOW_GRID, heatmap)
        assert 0 <= gap < 30, (width, height, gap)
    assert dash_duo.get_logs() == []
