"""The blog's story walked as a reader walks it, in headless chromium at 1400 x 1000, reading what a person reads:
the 4s that look like 9s (by P(9), then by Dense_1's own likeness) → Compare the 9-like 4 with a clear 4 and a
clear 9 at each conv layer, then one map large across the three → Classes, mean 4 − mean 9 → "Why this
prediction?" of the 9-like 4, its contributions adding up to the logits Keras computes.

The README's tour ("A tour: 4s that look like 9s") is this walk, link by link.

Run: ``.venv/bin/python -m pytest tests/browser/pages/test_story.py --headless``.
"""

from __future__ import annotations

import keras
import numpy as np
from dash.testing.wait import until

from tests.app_context import served_context
from tests.browser.helpers import choose_option, open_from_navigation, wait_for_figure
from tests.browser.pages.test_compare import click_cell
from tests.browser.pages.test_journey import basket, first_thumbnail

PORT = 8221
CONV_LAYERS = ("Conv2D_1", "Conv2D_2", "Conv2D_3")
# Click the "why?" link of a Compare card by its image; whether there was one.
CLICK_WHY_OF = """
const link = Array.from(document.querySelectorAll('a')).find(
    a => a.textContent === 'why?' && new URL(a.href).searchParams.get('image') === String(arguments[0]));
if (link) { link.click(); }
return Boolean(link);
"""


def caption(dash_duo, gallery: str, index: int) -> list[str]:
    """The lines of a finder thumbnail's caption as shown."""
    item = dash_duo.find_element(f"#{gallery} [data-image='{index}']")
    return item.find_element("css selector", ".small.text-center").text.split("\n")


def pick_first(dash_duo, finder) -> int:
    """Tick the first thumbnail of the gallery; its image number."""
    dash_duo._wait_for_callbacks()
    image, box = first_thumbnail(dash_duo, finder)
    box.click()
    return image


def test_the_story_of_4s_that_look_like_9s_reads_from_the_finder_to_why_this_prediction(dash_duo, app_store):
    from app.main import app
    from app.pages import classes, compare, finder, why

    loaded = served_context().store.get("mnist-cnn")
    probabilities = np.asarray(loaded.model.predict(loaded.images, verbose=0))
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app, port=PORT)

    # 1. The 4s that look most like 9s, by the model's P(9): #663 first, its caption saying how 9-like it is.
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/finder?model=mnist-cnn&true=4&sort=probability-desc&prob=9")
    dash_duo.wait_for_text_to_equal(f"#{finder.COUNT}", "100 images match", timeout=30)
    nine_like = pick_first(dash_duo, finder)
    assert nine_like == 663 and caption(dash_duo, finder.GALLERY, 663) == ["#663", "4→4", "P(9) 0.43"]
    # ... and by Dense_1's own view of likeness: #663 is also the 4 whose Dense_1 output lies nearest the mean 9.
    choose_option(dash_duo, f"#{finder.SORT}", finder.SORT_LABELS["likeness"])
    dash_duo.wait_for_contains_text(f"#{finder.COUNT}", "nearest first to the mean 9 at Dense_1", timeout=30)
    until(lambda: first_thumbnail(dash_duo, finder)[0] == 663, 10)
    assert caption(dash_duo, finder.GALLERY, 663)[2].startswith("d(9) ")
    # a clear 4 (the most confident) and a clear 9
    choose_option(dash_duo, f"#{finder.SORT}", finder.SORT_LABELS["confidence-desc"])
    until(lambda: "sort=confidence-desc" in dash_duo.driver.current_url, 10)
    clear_four = pick_first(dash_duo, finder)
    choose_option(dash_duo, f"#{finder.TRUE_CLASS}", "9")
    until(lambda: "true=9" in dash_duo.driver.current_url, 10)
    clear_nine = pick_first(dash_duo, finder)
    until(lambda: basket(dash_duo) == [663, clear_four, clear_nine], 10)
    assert probabilities[clear_four, 4] > 0.99 and probabilities[clear_nine, 9] > 0.99

    # 2. Compare the three, layer by layer.
    dash_duo.find_element(f"#{finder.OPEN_COMPARE}").click()
    until(lambda: f"images=663,{clear_four},{clear_nine}" in dash_duo.driver.current_url, 20)
    grids = f"[id*='{compare.GRID}'] .js-plotly-plot"
    for layer in CONV_LAYERS:
        label = next(info.label for info in loaded.engine.layers if info.name == layer)
        choose_option(dash_duo, f"#{compare.LAYER}", label)
        until(lambda layer=layer: [state for state in dash_duo.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), g => g.layout.title.text);", grids)]
              == [f"image {image} · {layer}" for image in (663, clear_four, clear_nine)], 20,
              msg=f"the three grids of {layer}")
    # ... then one map of Conv2D_3 large for all three, on one scale: a click on map 0 of the 9-like 4's grid.
    click_cell(dash_duo, grids, 1, 1)
    across = wait_for_figure(dash_duo, compare.UNIT_ACROSS_GRAPH, lambda state: "map 0 of Conv2D_3" in state["title"])
    assert across["title"] == "map 0 of Conv2D_3 in every image · one colour scale"
    until(lambda: "unit=0" in dash_duo.driver.current_url, 10)

    # 3. Classes: what separates all 4s from all 9s at that layer (the navigation bar, back at the top of the page).
    open_from_navigation(dash_duo, "/classes")
    wait_for_figure(dash_duo, classes.DIFFERENCE, lambda state: (state["title"] or "").startswith("mean 4 − mean 9"))
    mean_four = wait_for_figure(dash_duo, classes.MEAN_A, lambda state: bool(state["title"]))
    assert mean_four["title"] == "mean of class 4 · Conv2D_3"  # at the layer Compare was showing

    # 4. Why this prediction? for the 9-like 4, from its Compare card: predicted 4, with 9 the runner-up.
    dash_duo.driver.back()
    dash_duo.wait_for_element_by_css_selector(grids, timeout=20)
    # found and clicked in one script: Compare's cards are redrawn as the page comes back, leaving stale elements
    until(lambda: dash_duo.driver.execute_script(CLICK_WHY_OF, 663), 20, msg="Compare's why? link of #663")
    dash_duo.wait_for_contains_text(f"#{why.HEADING}", "Image 663: true class 4, predicted 4 (56.7%)", timeout=30)
    chart_a = wait_for_figure(dash_duo, why.CHART_A, lambda state: bool(state["title"]))
    chart_b = wait_for_figure(dash_duo, why.CHART_B, lambda state: bool(state["title"]))
    assert "4" in chart_a["title"] and "9" in chart_b["title"]
    # the contributions add up to the logits Keras computes (its last layer without the softmax)
    dense = loaded.model.get_layer("Dense_2")
    hidden = keras.Model(loaded.model.inputs, loaded.model.get_layer("Dense_1").output)
    logits = np.asarray(hidden.predict(loaded.images[663:664], verbose=0))[0] @ np.asarray(dense.kernel) \
        + np.asarray(dense.bias)
    summary = dash_duo.find_element(f"#{why.SUMMARY}").text
    assert f"{logits[4]:.4f}" in summary and f"{logits[9]:.4f}" in summary, summary
    assert dash_duo.get_logs() == []
