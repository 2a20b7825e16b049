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
        ((3, 3, 128), 11, 12, (33, 36)),  # more than 64 maps: a near-square block
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


def test_up_to_64_maps_go_eight_to_a_row_and_more_form_a_near_square_block():
    from app.core.grid import default_per_row, layout_for

    assert [default_per_row(n, True) for n in (3, 32, 64, 65, 128, 512)] == [8, 8, 8, 9, 12, 23]
    block = layout_for((3, 3, 128))
    assert (block.rows, block.cols) == (11, 12) and block.rows * block.cols >= 128


def test_a_grid_within_its_budget_and_screen_keeps_its_maps_and_nodes_are_never_shrunk():
    from app.core.grid import screen_unit_size

    conv1 = layout_for((26, 26, 32))  # the bundled model's largest grid: 104 x 208 cells
    assert screen_unit_size(conv1, 96_000, (900, 560)) == (26, 26)
    assert screen_unit_size(layout_for((1000,)), 10, (10, 10)) == (1, 1)


def test_a_224_px_models_first_layer_is_shrunk_to_the_cell_budget_and_to_the_screen():
    from app.core.grid import screen_unit_size

    mobilenet = layout_for((112, 112, 32))  # 4 x 8 maps: 448 x 896 cells, 401,408 of them
    height, width = screen_unit_size(mobilenet, 96_000)
    assert height * width * 32 <= 96_000 and (height + 1) * (width + 1) * 32 > 96_000
    # drawn 300 px wide, 8 maps to a row leave at most 37 px to a map
    assert screen_unit_size(mobilenet, 96_000, (300, 1000))[1] == 300 * 112 // 896


@pytest.mark.parametrize(("unit", "shown"), [((6, 6), (3, 3)), ((7, 5), (3, 2)), ((5, 5), (5, 5)), ((4, 9), (1, 1))])
def test_shrunk_maps_are_the_means_of_their_own_blocks_and_padding_stays_empty(unit, shown):
    from app.core.grid import shrink_units

    rng = np.random.default_rng(0)
    activations = rng.normal(size=(*unit, 5)).astype(np.float32)
    grid, layout = tile(activations, per_row=3)  # 2 rows of 3 slots, the last one padding
    shrunk = shrink_units(grid, layout, shown)
    assert shrunk.shape == (layout.rows * shown[0], layout.cols * shown[1])
    for unit_index in range(5):
        row, col = divmod(unit_index, 3)
        for i in range(shown[0]):
            for j in range(shown[1]):
                # the block's rows and columns of the map itself, by the stated rule
                rows = slice(i * unit[0] // shown[0], (i + 1) * unit[0] // shown[0])
                cols = slice(j * unit[1] // shown[1], (j + 1) * unit[1] // shown[1])
                expected = activations[rows, cols, unit_index].mean()
                assert shrunk[row * shown[0] + i, col * shown[1] + j] == pytest.approx(expected, rel=1e-5)
    assert np.isnan(shrunk[shown[0]:, 2 * shown[1]:]).all()
