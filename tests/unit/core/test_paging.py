"""Paging a layer's maps: which layers are paged and how many maps a page holds, which maps each page holds in
model order and most active first (checked against numpy's argsort of the maps' means), the page that holds a map,
and a page's grid (checked against the blog's tiling of the same maps)."""

import numpy as np
import pytest

from app.core.grid import (
    MAP_ORDERS,
    PAGE_SIZES,
    map_order,
    map_page,
    maps_per_page,
    page_count,
    tile_page,
)
from app.views.explore import GRID_AREA_PX
from tests.unit.core.test_grid import blog_tile


@pytest.mark.parametrize(
    ("shape", "per_page"),
    [
        ((3, 3, 128), None),  # the bundled model's Conv2D_3: one page, as before
        ((11, 11, 64), None),
        ((112, 112, 32), None),  # MobileNetV2's Conv1: averaged down, not paged
        ((1280,), None),  # nodes are never paged
        ((7, 7, 1280), 64),  # MobileNetV2's out_relu: 20 pages
        ((7, 7, 320), 64),
        ((7, 7, 2048), 64),  # ResNet50's conv5
        ((28, 28, 192), 64),
        ((16, 16, 300), 64),
        ((3, 3, 256), 128),  # small maps: more to a page, still readable
    ],
)
def test_which_layers_are_paged_and_how_many_maps_a_page_holds(shape, per_page):
    assert maps_per_page(shape, GRID_AREA_PX) == per_page


def test_a_page_size_is_one_of_the_sizes_and_a_paged_layer_has_more_maps_than_a_page():
    for side in (1, 2, 3, 5, 7, 14, 28, 56):
        for n_maps in (65, 200, 513, 2048):
            per_page = maps_per_page((side, side, n_maps), GRID_AREA_PX)
            assert per_page is None or (per_page in PAGE_SIZES and n_maps > per_page)


def activations(n_maps: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(5, 4, n_maps)).astype(np.float32) * rng.uniform(0.1, 3, size=n_maps).astype(np.float32)


def test_model_order_is_the_models_and_most_active_first_sorts_by_mean_descending():
    values = activations()
    np.testing.assert_array_equal(map_order(values, "model"), np.arange(300))
    means = values.astype(np.float64).mean(axis=(0, 1))
    expected = np.argsort(-means, kind="stable")
    np.testing.assert_array_equal(map_order(values, "active"), expected)
    assert np.all(np.diff(means[map_order(values, "active")]) <= 0)


def test_equal_means_keep_model_order_and_non_finite_means_come_last():
    values = np.zeros((2, 2, 6), np.float32)
    values[..., 1] = np.nan
    values[..., 4] = 2.0
    values[..., 5] = 2.0
    assert map_order(values, "active").tolist() == [4, 5, 0, 2, 3, 1]


def test_an_unknown_order_is_refused():
    with pytest.raises(ValueError, match="unknown map order"):
        map_order(activations(), "random")


@pytest.mark.parametrize("order", MAP_ORDERS)
def test_the_pages_hold_every_map_once_in_the_orders_order(order):
    values = activations()
    ordered = map_order(values, order)
    pages = [map_page(values, order, 64, number) for number in range(1, page_count(300, 64) + 1)]
    assert [page.count for page in pages] == [5] * 5
    assert [len(page.units) for page in pages] == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(np.concatenate([page.units for page in pages]), ordered)
    assert [(page.first, page.last) for page in pages] == [(1, 64), (65, 128), (129, 192), (193, 256), (257, 300)]
    assert all(page.per_row == 8 and page.n_units == 300 and page.order == order for page in pages)


def test_a_page_past_the_last_is_the_last_and_no_page_is_the_first():
    values = activations()
    assert map_page(values, "model", 64, 99).number == 5
    assert map_page(values, "model", 64, 0).number == 1
    assert map_page(values, "model", 64).number == 1


@pytest.mark.parametrize("order", MAP_ORDERS)
def test_a_unit_opens_the_page_that_holds_it_unless_a_page_is_asked_for(order):
    values = activations()
    for unit in (0, 63, 64, 200, 299):
        page = map_page(values, order, 64, unit=unit)
        assert unit in page.units.tolist()
        expected = int(np.flatnonzero(map_order(values, order) == unit)[0]) // 64 + 1
        assert page.number == expected
    assert map_page(values, order, 64, page=2, unit=0).number == 2  # the page asked for wins
    assert map_page(values, order, 64, unit=300).number == 1  # no such map: the first page
    assert map_page(values, order, 64, unit=10**18).number == 1


def test_a_pages_grid_tiles_its_maps_as_the_blog_does_every_page_as_wide_as_a_full_one():
    values = activations()
    for number in (2, 5):
        page = map_page(values, "active", 64, number)
        grid, layout = tile_page(values, page)
        assert (layout.n_units, layout.cols) == (len(page.units), 8)
        np.testing.assert_array_equal(grid, blog_tile(values[..., page.units], 8).astype(np.float32))
