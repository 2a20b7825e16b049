"""Figures of the Features page: the optimal-input grid sits exactly like the activation grid; an attribution is a
half-transparent overlay on the digit, transparent where it is 0, with a colour bar that says what it shows."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app.core.attribution import METHODS
from app.core.grid import default_per_row, layout_for, unit_coordinates
from app.figures.codec import decode_array
from app.figures.features import COLORBAR_TITLES, attribution_figure, completeness_sentence, feature_grid, kernel_grid


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
    shown = [shape for shape in figure["layout"]["shapes"] if shape.get("visible", True)]
    rectangles = [shape for shape in shown if shape["type"] == "rect"]
    assert [(r["x0"], r["y0"]) for r in rectangles] == [(2 * 5 - 0.5, -0.5), (7 * 5 - 0.5, -0.5)]


def test_nodes_form_the_activation_grids_block_and_channels_are_averaged():
    images = np.random.default_rng(0).random((100, 3, 3, 3), dtype=np.float32)
    figure, layout = feature_grid(images, np.zeros(100, bool), is_map=False, value_range=(0.0, 1.0))
    assert layout.cols == layout_for((100,)).cols == 10
    z = decode_array(figure["data"][0]["z"])
    np.testing.assert_allclose(z[0:3, 3:6], images[1].mean(axis=-1), rtol=1e-6)
    assert figure["data"][0]["meta"]["unit"] == "node"
    assert unit_coordinates(layout).shape[:2] == z.shape


def test_kernels_form_a_block_of_numbered_squares_on_a_scale_centred_on_zero():
    kernels = np.random.default_rng(1).normal(size=(3, 3, 1, 32)).astype(np.float32)
    figure = kernel_grid(kernels)
    z = decode_array(figure["data"][0]["z"])
    assert z.shape == (8 * 3, 4 * 3)  # 4 to a row: taller than wide, not a thin 8 x 4 strip
    np.testing.assert_allclose(z[0:3, 3:6], kernels[..., 0, 1])
    np.testing.assert_allclose(z[3:6, 0:3], kernels[..., 0, 4])
    assert figure["data"][0]["zmid"] == 0.0 and figure["data"][0]["zmin"] == -figure["data"][0]["zmax"]
    assert figure["data"][0]["colorbar"]["title"]["text"] == "weight"
    numbers = figure["layout"]["annotations"]
    assert [n["text"] for n in numbers] == [str(k) for k in range(32)]
    assert (numbers[5]["x"], numbers[5]["y"]) == (1 * 3 - 0.5, 1 * 3 - 0.5)  # kernel 5: row 1, column 1


def test_every_tile_carries_its_unit_number_in_its_top_left_corner():
    images = np.zeros((100, 28, 28, 1), np.float32)
    figure, layout = feature_grid(images, np.zeros(100, bool), is_map=False, value_range=(0.0, 1.0))
    numbers = figure["layout"]["annotations"]
    assert [n["text"] for n in numbers] == [str(k) for k in range(100)]
    for unit in (0, 9, 10, 57, 99):
        row, col = divmod(unit, layout.cols)
        assert (numbers[unit]["x"], numbers[unit]["y"]) == (col * 28 - 0.5, row * 28 - 0.5)
        assert numbers[unit]["xanchor"] == "left" and numbers[unit]["yanchor"] == "top"


def rgba_at(trace: dict, value: float) -> tuple[float, float, float, float]:
    """The colour a heatmap trace gives ``value``: its colour scale interpolated linearly (as plotly.js does,
    alpha included) at the value's position between zmin and zmax."""
    position = (value - trace["zmin"]) / (trace["zmax"] - trace["zmin"])
    stops = [(float(at), _rgba(color)) for at, color in trace["colorscale"]]
    for (low, low_color), (high, high_color) in zip(stops, stops[1:], strict=False):
        if low <= position <= high:
            share = 0.0 if high == low else (position - low) / (high - low)
            return tuple(a + share * (b - a) for a, b in zip(low_color, high_color, strict=True))
    raise AssertionError(f"{value} is outside the colour scale")


def _rgba(color: str) -> tuple[float, float, float, float]:
    numbers = [float(part) for part in re.findall(r"[0-9.]+", color)]
    return (*numbers[:3], numbers[3] if color.startswith("rgba") else 1.0)


def _is_invisible(color: tuple[float, float, float, float]) -> bool:
    """Fully transparent, or white: either way the digit underneath shows as it is."""
    return color[3] == 0.0 or color[:3] == (255.0, 255.0, 255.0)


def bar_title(trace: dict) -> str:
    """The colour bar's title as words (its line break a space)."""
    return trace["colorbar"]["title"]["text"].replace("<br>", " ")


DIGIT = np.zeros((4, 4, 1), np.float32)
DIGIT[1:3, 1:3] = 1.0


@pytest.mark.parametrize("method", list(METHODS))
def test_an_attribution_is_a_half_transparent_overlay_that_leaves_the_digit_alone_where_it_is_zero(method):
    signed = method == "integrated_gradients"
    heat = np.linspace(-1, 2, 16, dtype=np.float32).reshape(4, 4)
    figure = attribution_figure(DIGIT, heat if signed else np.abs(heat), signed, "title", method)
    digit, overlay = figure["data"]
    np.testing.assert_array_equal(decode_array(digit["z"]), DIGIT[..., 0])
    assert digit["showscale"] is False and _rgba(digit["colorscale"][0][1]) == (255, 255, 255, 1)  # white ground
    assert overlay["opacity"] == pytest.approx(0.55)
    assert _is_invisible(rgba_at(overlay, 0.0)), overlay["colorscale"]
    top = rgba_at(overlay, overlay["zmax"])
    assert top[3] == 1.0 and top[0] > 100 and top[2] < 60  # the largest values are a full, warm colour
    assert bar_title(overlay) == COLORBAR_TITLES[method]
    assert COLORBAR_TITLES[method] in overlay["hovertemplate"]


def test_colour_bar_titles_say_what_the_values_are():
    assert COLORBAR_TITLES == {
        "gradient": "|gradient|", "smoothgrad": "SmoothGrad |gradient|",
        "gradcam": "Grad-CAM (ReLU of weighted maps)",
        "integrated_gradients": "integrated gradients (contribution to the logit)",
    }
    # the long ones go on two lines (along a bar 180 px long), broken before their parenthesis
    overlay = attribution_figure(DIGIT, np.ones((4, 4)), True, method="integrated_gradients")["data"][1]
    assert overlay["colorbar"]["title"]["text"] == "integrated gradients<br>(contribution to the logit)"
    overlay = attribution_figure(DIGIT, np.ones((4, 4)), False, method="gradient")["data"][1]
    assert overlay["colorbar"]["title"] == {"text": "|gradient|", "side": "right", "font": {"size": 11}}
    # a caller that names no method (Compare's small cards) still gets a titled bar, a short one
    assert bar_title(attribution_figure(DIGIT, np.ones((4, 4)), False)["data"][1]) == "attribution"
    assert bar_title(attribution_figure(DIGIT, np.ones((4, 4)), True)["data"][1]) == "attribution (±)"


def test_signed_maps_are_blue_below_zero_and_red_above_on_a_symmetric_scale():
    heat = np.linspace(-1, 2, 16, dtype=np.float32).reshape(4, 4)
    overlay = attribution_figure(DIGIT, heat, signed=True, method="integrated_gradients")["data"][1]
    assert (overlay["zmin"], overlay["zmax"], overlay["zmid"]) == (-2.0, 2.0, 0.0)
    np.testing.assert_array_equal(decode_array(overlay["z"]), heat)
    red, _, blue, alpha = rgba_at(overlay, 2.0)
    assert red > blue and alpha == 1.0
    red, _, blue, alpha = rgba_at(overlay, -2.0)
    assert blue > red and alpha == 1.0
    # small values are faint: the colour comes in with the size of the attribution
    assert 0 < rgba_at(overlay, 0.2)[3] < rgba_at(overlay, 0.8)[3] < rgba_at(overlay, 1.5)[3] == 1.0


def test_magnitudes_start_at_zero_and_a_blank_or_broken_map_still_draws():
    overlay = attribution_figure(DIGIT, np.full((4, 4), 3.0), False, method="gradient")["data"][1]
    assert (overlay["zmin"], overlay["zmax"]) == (0.0, 3.0) and "zmid" not in overlay
    for heat in (np.zeros((4, 4)), np.full((4, 4), np.nan)):
        overlay = attribution_figure(DIGIT, heat, False, method="gradcam")["data"][1]
        assert (overlay["zmin"], overlay["zmax"]) == (0.0, 1.0)


def test_the_integrated_gradients_check_is_a_sentence():
    assert completeness_sentence(15.4712, 15.5349) == ("attributions add up to the logit change from black: "
                                                       "15.5 of 15.5")
    assert completeness_sentence(-0.0123, 2.0) == "attributions add up to the logit change from black: -0.0123 of 2"


def test_top_image_crops_sit_in_one_row_labelled_with_their_test_image_numbers():
    from app.figures.features import crops_figure

    crops = np.random.default_rng(2).random((3, 8, 8, 1)).astype(np.float32)
    crops[1, :2] = np.nan  # a field cut off at the image's top
    figure = crops_figure(crops, np.array([412, 7, 95]), (0.0, 1.0), "top 3")
    z = decode_array(figure["data"][0]["z"])
    assert z.shape == (8, 24)
    np.testing.assert_array_equal(z[:, 8:16], crops[1, ..., 0])
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["#412", "#7", "#95"]
    assert [a["x"] for a in figure["layout"]["annotations"]] == [-0.5, 7.5, 15.5]
