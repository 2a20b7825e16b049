"""The image finder in headless chromium, read as a person reads it: the 4→9 cell's "closest" offer lists the 4s
with each one's P(9) under it, the Sort-by box shows its orders whole, and "nearest the class at a layer" lists the
4s by their Dense_1 output's distance to the mean 9, in wide and narrow windows.

Run: ``.venv/bin/python -m pytest tests/browser/pages/test_finder.py --headless``.
"""

from __future__ import annotations

import json

import keras
import numpy as np
from dash.testing.wait import until

from tests.app_context import served_context
from tests.browser.helpers import choose_option
from tests.browser.pages.test_compare import click_cell

PORT = 8184
WINDOWS = ((1400, 1000), (800, 1000))

# Each thumbnail's image number, its caption as shown (innerText: one line per <br>), whether the caption's text is
# wider than its box (cut or spilling into the next thumbnail), and whether its last line (the probability) stays one
# line rather than wrapping. Argument: the gallery's id.
CAPTIONS = """
return JSON.stringify(Array.from(document.querySelectorAll('#' + arguments[0] + ' [data-image]')).map(item => {
    const caption = item.querySelector('.small.text-center');
    const probability = caption.lastElementChild;
    return [Number(item.dataset.image), caption.innerText, caption.scrollWidth > caption.clientWidth,
            probability.getClientRects().length === 1];
}));
"""

# The Sort-by box: the order shown, whether it is cut, and the width each order's label would take in it (measured
# in the box's own font) against the room the box has. Arguments: the dropdown's id, every label.
SORT_BOX = """
const value = document.getElementById(arguments[0] + '-value');
const pen = document.createElement('canvas').getContext('2d');
pen.font = getComputedStyle(value).font;
return JSON.stringify({shown: value.innerText, cut: value.scrollWidth > value.clientWidth, room: value.clientWidth,
                       widths: arguments[1].map(label => Math.ceil(pen.measureText(label).width))});
"""


def read(dash_duo, script: str, *arguments):
    return json.loads(dash_duo.driver.execute_script(script, *arguments))


def test_closest_4s_to_9_show_their_p9_and_sort_by_shows_whole_labels_at_1400_and_800_px(dash_duo, app_store):
    from app.main import app
    from app.pages import finder

    loaded = served_context().store.get("mnist-cnn")
    fours = np.flatnonzero(loaded.labels == 4)
    # independent of the page and the engine's cached predictions: the Keras model's softmax on the test 4s
    p9 = dict(zip(fours.tolist(), np.asarray(loaded.model.predict(loaded.images[fours], verbose=0))[:, 9],
                  strict=True))
    dash_duo.driver.set_window_size(*WINDOWS[0])
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/finder?model=mnist-cnn&true=4&predicted=9")
    dash_duo.wait_for_element_by_css_selector(f"#{finder.CONFUSION} .js-plotly-plot", timeout=20)
    dash_duo.wait_for_text_to_equal(f"#{finder.COUNT}", "0 images match", timeout=20)

    # the story of the issue: the 4→9 cell is empty, its offer lists the 4s closest to 9
    click_cell(dash_duo, f"#{finder.CONFUSION} .js-plotly-plot", 9, 4)
    dash_duo.wait_for_text_to_equal(f"#{finder.CLOSEST}", "class 4 closest to class 9 (by P(9))", timeout=10)
    assert dash_duo.find_element(f"#{finder.CLOSEST_BY_LIKENESS}").text == "... or nearest the mean 9 at Dense_1"
    assert dash_duo.find_element(f"#{finder.COUNT}").text == "0 images match"
    dash_duo.find_element(f"#{finder.CLOSEST}").click()
    dash_duo.wait_for_text_to_equal(f"#{finder.COUNT}", "100 images match", timeout=10)
    until(lambda: "sort=probability-desc" in dash_duo.driver.current_url, 5)

    labels = list(finder.SORT_LABELS.values())
    for width, height in WINDOWS:
        dash_duo.driver.set_window_size(width, height)
        captions = read(dash_duo, CAPTIONS, finder.GALLERY)
        order = [image for image, *_ in captions]
        assert sorted(order) == sorted(p9), width
        assert all(p9[a] >= p9[b] - 1e-6 for a, b in zip(order, order[1:], strict=False)), width  # P(9), highest first
        shown = {image: text.split("\n") for image, text, *_ in captions}
        assert shown[663] == ["#663", "4→4", "P(9) 0.43"], width  # the one 9-like 4, first
        assert order.index(663) == 0 and order.index(988) == 2, width
        assert shown[988][2] == "P(9) 0.004", width  # third, and not 9-like
        for image, lines in shown.items():  # right to the last digit shown
            number = lines[2].removeprefix("P(9) ")
            assert abs(float(number) - p9[image]) <= 0.5 * 10 ** -len(number.split(".")[1]) + 1e-6, (width, image)
        assert [image for image, _, cut, _ in captions if cut] == [], width
        assert [image for image, _, _, one_line in captions if not one_line] == [], width  # "P(9) 0.004" not broken

        box = read(dash_duo, SORT_BOX, finder.SORT, labels)
        assert box["shown"] == finder.SORT_LABELS["probability-desc"] and not box["cut"], (width, box)
        assert max(box["widths"]) <= box["room"], (width, box)  # every order fits when chosen

    # the layer's own likeness: the 4s whose Dense_1 output lies nearest the mean 9, each with its distance,
    # against numpy on Keras's own Dense_1 outputs
    dense = keras.Model(loaded.model.inputs, loaded.model.get_layer("Dense_1").output)
    outputs = np.asarray(dense.predict(loaded.images, verbose=0), dtype=np.float64)
    distance = np.linalg.norm(outputs - outputs[loaded.labels == 9].mean(axis=0), axis=1)
    choose_option(dash_duo, f"#{finder.SORT}", finder.SORT_LABELS["likeness"])
    until(lambda: "sort=likeness&prob=9&likeness_layer=Dense_1" in dash_duo.driver.current_url, 10)
    dash_duo.wait_for_contains_text(f"#{finder.COUNT}", "nearest first to the mean 9 at Dense_1", timeout=20)
    for width, height in WINDOWS:
        dash_duo.driver.set_window_size(width, height)
        captions = read(dash_duo, CAPTIONS, finder.GALLERY)
        order = [image for image, *_ in captions]
        assert order[:5] == fours[np.argsort(distance[fours], kind="stable")][:5].tolist(), width
        for image, text, cut, one_line in captions[:20]:
            shown_distance = float(text.split("\n")[2].removeprefix("d(9) "))
            assert abs(shown_distance - distance[image]) <= 0.006 * distance[image], (width, image, text)
            assert not cut and one_line, (width, image)
    assert dash_duo.get_logs() == []
