"""A 224-pixel MobileNetV2 in headless chromium: its first layer (32 maps of 112 x 112, 401,408 values) draws from
an answer within the view's byte budget, averaged down for the screen, and the hover label still names the exact
float32 value of the cell under the pointer.

Run: ``.venv/bin/python -m pytest tests/browser/test_large_models.py --headless``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.browser.helpers import exact_hover_label, wait_for_figure
from tests.conftest import layer_outputs, write_model_folder

PORT = 8231
VIEW_BYTES = 150_000  # the most a view of any layer may take, uncompressed
# The uncompressed size of every callback answer the page received.
ANSWER_BYTES = """
return performance.getEntriesByType('resource')
    .filter(entry => entry.name.includes('_dash-update-component'))
    .map(entry => entry.decodedBodySize);
"""


@pytest.fixture
def mobilenet_store(app_store):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10)
    rows, cols = np.mgrid[0:224, 0:224] / 223.0
    images = np.stack([np.stack([rows, cols, (rows * cols) ** (k + 1)], axis=-1) for k in range(3)])
    write_model_folder(app_store, "mobilenetv2", model, images.astype(np.float32), np.arange(3))
    return app_store


def test_a_mobilenet_first_layer_draws_within_the_byte_budget_and_hovers_exact_values(dash_duo, mobilenet_store):
    from app.main import app
    from app.pages import explore
    from tests.app_context import served_context

    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=mobilenetv2&layer=Conv1&image=2")
    state = wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "32 maps of image 2" in (s["title"] or ""), 90)
    assert len(state["z"]) * len(state["z"][0]) <= 64_000  # averaged down: not the 401,408 cells
    dash_duo._wait_for_callbacks()
    answers = dash_duo.driver.execute_script(ANSWER_BYTES)
    assert answers and max(answers) <= VIEW_BYTES, answers

    loaded = served_context().store.get("mobilenetv2")
    expected = layer_outputs(loaded, "Conv1", [2])[0]  # [112, 112, 32], from Keras directly
    # map 11 sits in grid row 1, column 3; aim at its row 40, column 70
    x, y = 3 * 112 + 70, 112 + 40
    first, second = exact_hover_label(dash_duo, explore.HEATMAP, x, y, starts="map 11 ·").split("\n")
    row, col = (int(n) for n in re.fullmatch(r"map 11 · row (\d+), col (\d+)", first).groups())
    # the cell under the pointer (a cell is under a screen pixel here: within one of the one aimed at) ...
    assert abs(row - 40) <= 1 and abs(col - 70) <= 1, first
    # ... and its exact value, as Keras computes it
    value = float(re.fullmatch(r"value (\S+)", second).group(1))
    assert np.float32(value) == pytest.approx(expected[row, col, 11], rel=1e-5, abs=1e-6)
    assert dash_duo.get_logs() == []
