"""Tiling layer outputs into grids, checked against the blog's loop-based tiling."""

import numpy as np
import pytest

from app.core.grid import layout_for, standardize_and_clip, tile, unit_at, unit_coordinates


def blog_tile(maps: np.ndarray, per_row: int) -> np.ndarray:
    """The blog's double loop (img_grid_of_layer_activation), generalised to a partial last row with NaN."""
    height, width, n_maps = maps.shape
    rows = -(-n_maps // per_row)
    grid = np.full((rows * height, per_row * width), np.nan)
    for row in range(rows):
        for col in range(per_row):
            unit = row * per_row + col
            if unit < n_maps:
                grid[row * height : (row + 1) * height, col * width : (col + 1) * width] = maps[:, :, unit]
    return grid


@pytest.mark.parametrize(
    ("shape", "rows", "cols", "grid_shape"),
    [
        ((26, 26, 32), 4, 8, (104, 208)),
        ((3, 3, 128), 16, 8, (48, 24)),
        ((11, 11, 64), 8, 8, (88, 88)),
        ((100,), 10, 10, (10, 10)),
        ((10,), 1, 10, (1, 10)),
        ((16,), 1, 16, (1, 16)),
        ((17,), 4, 5, (4, 5)),
        ((1152,), 34, 34, (34, 34)),
        ((5, 5, 3), 1, 3, (5, 15)),
    ],
)
def test_layout_rows_and_columns(shape, rows, cols, grid_shape):
    layout = layout_for(shape)
    assert (layout.rows, layout.cols) == (rows, cols)
    assert layout.shape == grid_shape


def test_tile_matches_blog_loop_top_down_left_to_right():
    maps = np.random.default_rng(0).random((4, 5, 19)).astype(np.float32)
    grid, layout = tile(maps, per_row=8)
    np.testing.assert_array_equal(grid, blog_tile(maps, 8))
    # map 9 sits in the second grid row, second column
    np.testing.assert_array_equal(grid[4:8, 5:10], maps[:, :, 9])
    assert np.isnan(grid[8:, 15:]).all() and layout.n_units == 19


def test_tile_dense_nodes_one_cell_each():
    nodes = np.arange(10, dtype=np.float32)
    grid, layout = tile(nodes, per_row=4)
    assert grid.shape == (3, 4)
    np.testing.assert_array_equal(grid.ravel()[:10], nodes)
    assert np.isnan(grid.ravel()[10:]).all()


def test_unit_coordinates_name_the_unit_under_each_cell():
    values = np.zeros((3, 3, 20), np.float32)
    values[..., :] = np.arange(20, dtype=np.float32)  # every cell of map k holds k
    grid, layout = tile(values)
    coords = unit_coordinates(layout)
    assert coords.shape == (*layout.shape, 3)
    for y, x in [(0, 0), (4, 7), (5, 23), (8, 10)]:
        assert coords[y, x, 0] == (-1 if np.isnan(grid[y, x]) else grid[y, x])
        assert tuple(coords[y, x, 1:]) == (y % 3, x % 3)
    assert coords[8, 23, 0] == -1  # padding after unit 19


def test_tile_rejects_other_ranks():
    with pytest.raises(ValueError, match="cannot tile"):
        tile(np.zeros((2, 3)))


def test_standardize_and_clip_matches_blog_per_map():
    maps = np.random.default_rng(1).normal(3, 2, (6, 6, 4)).astype(np.float32)
    maps[..., 2] = 5.0  # constant map: the blog only centres it
    scaled = standardize_and_clip(maps)
    for k in range(4):
        expected = maps[:, :, k].copy()
        expected -= expected.mean()
        if expected.std() != 0:
            expected /= expected.std()
            expected *= 64
            expected += 128
        np.testing.assert_allclose(scaled[:, :, k], np.clip(expected, 0, 255), atol=1e-3)


@pytest.mark.parametrize("shape", [(3, 3, 20), (5, 4, 8), (1, 1, 3), (100,), (10,), (7,)])
def test_unit_at_names_the_unit_of_every_cell_as_unit_coordinates_does(shape):
    layout = layout_for(shape)
    coords = unit_coordinates(layout)
    height, width = layout.shape
    found = np.array([[unit_at(layout, x, y) for x in range(width)] for y in range(height)], dtype=object)
    np.testing.assert_array_equal(np.where(found == None, -1, found).astype(int), coords[..., 0])  # noqa: E711
    assert unit_at(layout, width, 0) is None and unit_at(layout, 0, height) is None and unit_at(layout, -1, 0) is None
