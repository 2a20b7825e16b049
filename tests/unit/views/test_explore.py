"""The explorer's view: it round-trips through its link, any query gives a view or notices (never an exception),
and what it shows is what Keras computes for that layer and image."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.activations import ImageOutOfRange
from app.core.attribution import METHODS
from app.core.errors import InvalidInput, NotFound
from app.core.grid import COLORMAPS, MAP_ORDERS
from app.core.store import ModelStore
from app.core.user_images import UserImageStore, add_array
from app.views.explore import ExploreView, explore
from tests.conftest import MANY_MAPS, MANY_MAPS_LAYER, layer_outputs, write_many_maps_model

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
views = st.builds(
    ExploreView,
    model=st.none() | names,
    layer=st.none() | names,
    image=st.integers(0, 10**9) | st.text("0123456789abcdef", min_size=20, max_size=20).map(lambda h: "u:" + h),
    cmap=st.sampled_from(COLORMAPS),
    reverse=st.booleans(),
    scale=st.booleans(),
    fixed=st.booleans(),
    unit=st.none() | st.integers(0, 10**6),
    method=st.sampled_from(("", *METHODS)),
    target=st.none() | st.integers(0, 10**4),
    page=st.none() | st.integers(1, 10**6),
    order=st.sampled_from(MAP_ORDERS),
)


def reopened(view: ExploreView) -> tuple[ExploreView, list[str]]:
    """The view a browser gets from ``view``'s link: the query as Dash hands it to ``layout(**query)``."""
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    return ExploreView.from_query(query)


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    assert reopened(view) == (view, [])


QUERY_KEYS = ["model", "layer", "image", "cmap", "reverse", "scale", "unit", "page", "order", "basket", "other"]
query_values = st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3),
                         st.sampled_from(["u:", "u:" + "0" * 20, "１", "1_0", "-1", "1e3", "nan", "jet", "viridis"]))


@given(st.dictionaries(st.sampled_from(QUERY_KEYS), query_values))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = ExploreView.from_query(query)
    assert isinstance(view.image, int) and view.image >= 0 or view.image.startswith("u:")
    assert view.cmap in COLORMAPS and view.unit is None or view.unit >= 0
    assert view.order in MAP_ORDERS and (view.page is None or view.page >= 1)
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_defaults_and_what_a_malformed_value_falls_back_to():
    assert ExploreView.from_query({}) == (ExploreView(), [])
    view, notices = ExploreView.from_query({"image": "１", "unit": "x", "cmap": "nope", "reverse": "yes"})
    assert view == ExploreView(reverse=True)
    assert notices == ["Image '１' is not a whole number; showing 0.",
                       "Unit 'x' is not a whole number of 0 or more; no unit chosen."]
    assert ExploreView(image=0).to_query() == "?image=0&cmap=viridis"  # image 0 is kept: a link reopens it


@pytest.fixture
def store(tiny_store):
    return ModelStore(tiny_store)


@pytest.mark.parametrize("layer", ["conv", "pool", "hidden", "output"])
def test_what_a_view_shows_is_what_keras_computes(store, tmp_path, layer):
    result = explore(store, UserImageStore(tmp_path), ExploreView("tiny", layer, 7))
    loaded = result.loaded
    expected = layer_outputs(loaded, layer, [7])[0]  # an independent truncated model, predicted by Keras
    units = expected.shape[-1]
    height, width = (expected.shape[0], expected.shape[1]) if expected.ndim == 3 else (1, 1)
    for unit in range(units):
        row, col = divmod(unit, result.grid_layout.cols)
        cell = result.grid[row * height:(row + 1) * height, col * width:(col + 1) * width]
        np.testing.assert_allclose(cell.reshape(-1), expected[..., unit].reshape(-1), rtol=1e-5, atol=1e-6)
    assert np.isnan(result.grid).sum() == result.grid.size - expected.size  # the slots past the last unit
    keras_probabilities = loaded.model.predict(loaded.images[7:8], verbose=0)[0]
    np.testing.assert_allclose(result.probabilities, keras_probabilities, rtol=1e-5, atol=1e-6)
    assert result.image.label == int(loaded.labels[7])
    assert (result.unit_names is not None) == (layer == "output")


def test_the_users_own_image_is_shown_like_a_test_image(store, tmp_path):
    images = UserImageStore(tmp_path)
    loaded = store.get("tiny")
    values = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6, 1)
    stored = add_array(images, loaded, values.tolist())
    result = explore(store, images, ExploreView("tiny", "output", stored.id))
    keras_probabilities = loaded.model.predict(values[None], verbose=0)[0]
    np.testing.assert_allclose(result.probabilities, keras_probabilities, rtol=1e-5, atol=1e-6)
    assert result.image.own and result.image.label is None and result.image.key == stored.id


@pytest.mark.parametrize(("view", "error"), [
    (ExploreView(None, "conv"), InvalidInput),
    (ExploreView("nope", "conv"), NotFound),
    (ExploreView("tiny", "nope"), NotFound),
    (ExploreView("tiny", "conv", 24), ImageOutOfRange),
    (ExploreView("tiny", "conv", "u:" + "0" * 20), NotFound),
])
def test_what_cannot_be_shown_is_said(store, tmp_path, view, error):
    with pytest.raises(error):
        explore(store, UserImageStore(tmp_path), view)


def test_a_fixed_scale_is_the_layers_test_set_percentiles_on_every_image(store, tmp_path):
    loaded = store.get("tiny")
    images = UserImageStore(tmp_path)
    outputs = layer_outputs(loaded, "conv")  # every test image (24, fewer than the sample): the exact percentiles
    expected = np.percentile(outputs, [1, 99])
    ranges = {explore(store, images, ExploreView("tiny", "conv", index, fixed=True)).colour_range for index in (0, 5)}
    assert len(ranges) == 1  # the same scale whatever the image
    np.testing.assert_allclose(ranges.pop(), expected, rtol=1e-5)
    assert explore(store, images, ExploreView("tiny", "conv", 0)).colour_range is None
    assert explore(store, images, ExploreView("tiny", "conv", 0, scale=True, fixed=True)).colour_range == (0, 255)


def test_the_page_and_the_order_travel_in_the_link_and_malformed_ones_are_said():
    view = ExploreView("m", "wide", 2, page=3, order="active", unit=150)
    assert view.to_query() == "?model=m&layer=wide&image=2&cmap=viridis&unit=150&page=3&order=active"
    assert reopened(view) == (view, [])
    assert ExploreView(page=2).to_query() == "?image=0&cmap=viridis&page=2"  # model order is left out
    view, notices = ExploreView.from_query({"page": "0", "order": "random"})
    assert (view.page, view.order) == (None, "model")
    assert notices == ["Page '0' is not a page number (they count from 1); showing the first.",
                       "Order 'random' is not one of model, active; showing model order."]
    view, notices = ExploreView.from_query({"page": "２", "order": "model"})
    assert view.page is None and notices == ["Page '２' is not a page number (they count from 1); showing the first."]


@pytest.fixture
def many_maps(tiny_store):
    write_many_maps_model(tiny_store)
    return ModelStore(tiny_store)


def test_a_page_of_many_maps_is_what_keras_computes_for_its_true_map_numbers(many_maps, tmp_path):
    images = UserImageStore(tmp_path)
    loaded = many_maps.get("many-maps")
    expected = layer_outputs(loaded, MANY_MAPS_LAYER, [4])[0]  # [16, 16, 300], from a truncated Keras model
    by_mean = np.argsort(-expected.astype(np.float64).mean(axis=(0, 1)), kind="stable")
    for order, ordered in (("model", np.arange(MANY_MAPS)), ("active", by_mean)):
        result = explore(many_maps, images, ExploreView("many-maps", MANY_MAPS_LAYER, 4, page=2, order=order))
        page = result.page
        assert (page.number, page.count, page.first, page.last) == (2, 5, 65, 128)
        np.testing.assert_array_equal(page.units, ordered[64:128])
        assert result.grid_layout.n_units == 64 and result.grid.shape == (8 * 16, 8 * 16)
        for place, unit in enumerate(page.units):
            row, col = divmod(place, 8)
            tile = result.grid[row * 16:(row + 1) * 16, col * 16:(col + 1) * 16]
            np.testing.assert_allclose(tile, expected[..., unit], rtol=1e-5, atol=1e-6)


def test_a_unit_opens_its_page_a_page_past_the_end_is_the_last_and_one_page_layers_are_as_before(many_maps, tmp_path):
    images = UserImageStore(tmp_path)
    shown = explore(many_maps, images, ExploreView("many-maps", MANY_MAPS_LAYER, 1, unit=250))
    assert shown.page.number == 4 and 250 in shown.page.units.tolist()
    active = explore(many_maps, images, ExploreView("many-maps", MANY_MAPS_LAYER, 1, unit=250, order="active"))
    assert 250 in active.page.units.tolist()
    last = explore(many_maps, images, ExploreView("many-maps", MANY_MAPS_LAYER, 1, page=99))
    assert (last.page.number, len(last.page.units)) == (5, 44)
    np.testing.assert_array_equal(last.page.units, np.arange(256, 300))
    # a layer of one page ignores the page and the order: its grid is today's
    one_page = explore(many_maps, images, ExploreView("tiny", "conv", 1, page=3, order="active"))
    today = explore(many_maps, images, ExploreView("tiny", "conv", 1))
    assert one_page.page is None and np.array_equal(one_page.grid, today.grid, equal_nan=True)
    with pytest.raises(InvalidInput, match="Order 'x'"):
        explore(many_maps, images, ExploreView("many-maps", MANY_MAPS_LAYER, 1, order="x"))
