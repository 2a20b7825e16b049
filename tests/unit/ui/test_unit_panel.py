"""The unit panel's choice of unit: clicks choose, a layer change keeps a unit only where it exists, links open it,
and a unit that never fires says so instead of listing images."""

from __future__ import annotations

import numpy as np
from dash import no_update

from app.ui.unit_panel import chosen_unit, clicked_unit, unit_on_layer, unit_panel
from tests.app_context import served_context
from tests.conftest import layer_outputs


def test_a_click_chooses_its_unit_and_no_click_changes_nothing():
    assert clicked_unit({"points": [{"customdata": [5, 1, 2]}]}) == {"unit": 5, "clicked": True}
    # a ranking bar's customdata is (unit, signed difference) as floats
    assert clicked_unit({"points": [{"customdata": [17.0, -0.25]}]}) == {"unit": 17, "clicked": True}
    assert clicked_unit({"points": [{"customdata": {"0": 3, "1": 0, "2": 0}}]}) == {"unit": 3, "clicked": True}
    # a graph being inserted into the page sends no click; padding has no unit
    assert clicked_unit(None) is no_update
    assert clicked_unit({"points": [{"customdata": [-1, 0, 0]}]}) is no_update
    assert chosen_unit({"unit": 4, "clicked": True}) == 4
    assert [chosen_unit(bad) for bad in (None, {}, {"unit": -1}, {"unit": True}, {"unit": "x"}, [3])] == [None] * 6


def test_a_layer_change_keeps_the_unit_only_where_the_new_layer_has_it(app_store):
    assert unit_on_layer({"unit": 31, "clicked": True}, "mnist-cnn", "Conv2D_1") == {"unit": 31}  # 32 maps
    assert unit_on_layer({"unit": 32}, "mnist-cnn", "Conv2D_1") is None
    assert unit_on_layer({"unit": 100}, "mnist-cnn", "Conv2D_3") == {"unit": 100}  # 128 maps
    assert unit_on_layer({"unit": 10}, "mnist-cnn", "Dense_2") is None  # the 10 classes: nodes 0-9
    assert unit_on_layer({"unit": 3}, "mnist-cnn", "nope") is None
    assert unit_on_layer(None, "mnist-cnn", "Conv2D_1") is None


def test_a_link_opens_its_unit_and_names_one_the_layer_lacks(app_store):
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import classes, compare, explore

    page = explore.layout(layer="Conv2D_3", unit="100")
    assert page[explore.UNIT.unit].data == {"unit": 100}
    page = explore.layout(layer="Conv2D_1", unit="100")
    assert page[explore.UNIT.unit].data is None
    assert "Unit '100' is not in Conv2D_1 (it has maps 0-31); no unit chosen." in str(page[explore.IDS.notice].children)
    assert compare.layout(layer="Dense_2", unit="9")[compare.UNIT.unit].data == {"unit": 9}
    page = classes.layout(layer="Dense_2", unit="10")
    assert page[classes.UNIT.unit].data is None and "nodes 0-9" in str(page[classes.IDS.notice].children)
    page = classes.layout(layer="Dense_2", unit="1_0")  # not a number at all: the link's reading says so
    assert page[classes.UNIT.unit].data is None
    assert "Unit '1_0' is not a whole number of 0 or more; no unit chosen." in str(page[classes.IDS.notice].children)
    assert explore.sync_query("?model=mnist-cnn&layer=Conv2D_3&image=0&cmap=jet", {"unit": 100}) == \
        "?model=mnist-cnn&layer=Conv2D_3&image=0&cmap=jet&unit=100"
    assert compare.sync_query("?model=mnist-cnn&images=3,12&cmap=jet&a=3&b=12", {"unit": 4}) == \
        "?model=mnist-cnn&images=3,12&cmap=jet&a=3&b=12&unit=4"
    assert compare.sync_query("?model=mnist-cnn&images=3,12&cmap=jet&unit=4", None) == \
        "?model=mnist-cnn&images=3,12&cmap=jet"
    assert [explore.sync_query(bad, {"unit": 1}) for bad in (None, 3, ["?a"], "model=m", "?" + "x" * 3000)] == \
        [no_update] * 5
    assert "unit=7" in classes.sync_query("mnist-cnn", "Conv2D_3", 4, 9, "jet", {"unit": 7}, {"image": 5, "mlp": None})


def test_a_dead_unit_says_so_instead_of_listing_images(app_store):
    loaded = served_context().store.get("mnist-cnn")
    outputs = layer_outputs(loaded, "Dense_1")
    dead = int(np.flatnonzero(np.all(outputs == 0, axis=0))[0])
    alive = int(np.flatnonzero(outputs.max(axis=0) > 0)[0])
    text = str(unit_panel("classes", "mnist-cnn", "Dense_1", dead))
    assert f"Node {dead} of Dense_1 is dead on the whole test set: it is 0 on all 1000 test images" in text
    assert "/?model=mnist-cnn" not in text  # no thumbnails linking to images
    text = str(unit_panel("classes", "mnist-cnn", "Dense_1", alive))
    assert "dead" not in text and text.count("/?model=mnist-cnn&layer=Dense_1&image=") == 9


def test_where_the_model_looks_is_in_the_explorers_link_and_reopens():
    from app.pages import explore

    view = "?model=mnist-cnn&layer=Conv2D_3&image=7&cmap=jet"
    assert explore.sync_query(view, {"unit": 2}, "gradcam", 9) == f"{view}&unit=2&method=gradcam&target=9"
    assert explore.sync_query(view, None, "", -1) == view  # off, for the predicted class: nothing to say
    assert explore.sync_query(view, None, "smoothgrad", -1) == f"{view}&method=smoothgrad"
    for method, target in ((["gradcam"], [9]), ("nonsense", {"x": 1}), (True, True), (None, "1_0")):
        assert explore.sync_query(view, None, method, target) == view
    page = explore.layout(model="mnist-cnn", image="7", method="gradcam", target="9")
    assert (page[explore.ATTRIBUTION_METHOD].value, page[explore.ATTRIBUTION_CLASS].value) == ("gradcam", 9)
    page = explore.layout(model="mnist-cnn", method="nonsense", target="12")
    assert (page[explore.ATTRIBUTION_METHOD].value, page[explore.ATTRIBUTION_CLASS].value) == ("", -1)

