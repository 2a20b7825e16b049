"""Figures of the Features page: the optimal-input grid sits exactly like the activation grid."""

from __future__ import annotations

import numpy as np

from app.core.grid import default_per_row, layout_for, unit_coordinates
from app.figures.features import attribution_figure, feature_grid, kernel_grid
from app.figures.heatmaps import decode_array


def test_unit_k_sits_where_map_k_sits_in_the_activation_grid():
    images = np.stack([np.full((4, 5, 1), k, np.float32) for k in range(10)])  # image k is filled with k
    dead = np.zeros(10, bool)
    dead[[2, 7]] = True
    figure, layout = feature_grid(images, dead, is_map=True, value_range=(0.0, 9.0))
    z = decode_array(figure["data"][0]["z"])
    units = unit_coordinates(layout)[..., 0]
    # the activation grid of a 3x3x10 layer: 8 maps to a row, so the optimal inputs go 8 to a row too
    assert layout.cols == default_per_row(10, True) == layout_for((3, 3, 10)).cols
    assert z.shape == (2 * 4, 8 * 5)
    for k in range(10):
        row, col = divmod(k, layout.cols)
        cell = z[row * 4:(row + 1) * 4, col * 5:(col + 1) * 5]
        assert (cell == k).all() and (units[row * 4:(row + 1) * 4, col * 5:(col + 1) * 5] == k).all()
    rectangles = [shape for shape in figure["layout"]["shapes"] if shape["type"] == "rect"]
    assert [(r["x0"], r["y0"]) for r in rectangles] == [(2 * 5 - 0.5, -0.5), (7 * 5 - 0.5, -0.5)]


def test_nodes_form_the_activation_grids_block_and_channels_are_averaged():
    images = np.random.default_rng(0).random((100, 3, 3, 3), dtype=np.float32)
    figure, layout = feature_grid(images, np.zeros(100, bool), is_map=False, value_range=(0.0, 1.0))
    assert layout.cols == layout_for((100,)).cols == 10
    z = decode_array(figure["data"][0]["z"])
    np.testing.assert_allclose(z[0:3, 3:6], images[1].mean(axis=-1), rtol=1e-6)
    assert figure["data"][0]["meta"]["unit"] == "node"
    assert unit_coordinates(layout).shape[:2] == z.shape


def test_kernels_and_attribution_overlays():
    kernels = np.random.default_rng(1).normal(size=(3, 3, 1, 12)).astype(np.float32)
    figure = kernel_grid(kernels)
    z = decode_array(figure["data"][0]["z"])
    np.testing.assert_allclose(z[0:3, 3:6], kernels[..., 0, 1])
    assert figure["data"][0]["zmid"] == 0.0 and figure["data"][0]["zmin"] == -figure["data"][0]["zmax"]
    heat = np.linspace(-1, 2, 16, dtype=np.float32).reshape(4, 4)
    signed = attribution_figure(np.zeros((4, 4, 1), np.float32), heat, signed=True)
    assert len(signed["data"]) == 2 and signed["data"][1]["zmin"] == -2.0
    np.testing.assert_array_equal(decode_array(signed["data"][1]["z"]), heat)
    assert "zmid" not in attribution_figure(np.zeros((4, 4, 1), np.float32), np.abs(heat), signed=False)["data"][1]
