"""Figure builders of the compare, finder and classes pages, checked on values."""

from __future__ import annotations

import numpy as np
import pytest

from app.figures import comparison as af
from app.figures.codec import decode_array


def test_value_range_spans_all_grids_and_ignores_padding():
    grids = [np.array([[1.0, np.nan], [3.0, 2.0]]), np.array([[-2.0, 0.5]]), np.full((2, 2), np.nan)]
    assert af.value_range(grids) == (-2.0, 3.0)
    assert af.symmetric_range(grids) == (-3.0, 3.0)
    assert af.value_range([np.full((1, 1), np.nan)]) == (0.0, 1.0)  # nothing to scale: a usable default
    low, high = af.value_range([np.zeros((2, 2))])
    assert low == 0 and high > low  # a constant grid still gets a non-empty range


def test_difference_heatmap_is_centred_on_zero():
    difference = np.zeros((2, 2, 3), dtype=np.float32)
    difference[0, 0, 1] = -4
    difference[1, 1, 2] = 1
    figure = af.difference_heatmap(difference, "B − A")
    trace = figure["data"][0]
    assert (trace["zmin"], trace["zmax"], trace["zmid"]) == (-4.0, 4.0, 0.0)
    assert decode_array(trace["z"]).shape == (2, 6)  # three 2x2 maps in one row


def test_confusion_figure_shows_counts_and_outlines_the_selected_cell():
    matrix = np.array([[5, 1], [0, 7]])
    figure = af.confusion_figure(matrix, ["cat", "dog"], selected=(0, 1))
    trace = figure["data"][0]
    assert trace["text"] == [["5", "1"], ["", "7"]] and trace["customdata"] == [[5, 1], [0, 7]]
    assert figure["layout"]["xaxis"]["ticktext"] == ["cat", "dog"]
    assert "12/13 correct" in figure["layout"]["title"]["text"]
    (shape,) = figure["layout"]["shapes"]
    assert (shape["x0"], shape["x1"], shape["y0"], shape["y1"]) == (0.5, 1.5, -0.5, 0.5)


def test_ranking_figure_lists_the_top_units_in_order():
    scores = np.array([0.1, 3.0, 2.0, 0.5])
    signed = np.array([0.1, -3.0, 2.0, 0.0])
    figure = af.ranking_figure(scores, signed, np.array([1, 2, 3, 0]), 3, "t")
    bar = figure["data"][0]
    assert bar["x"] == ["#1", "#2", "#3"]
    assert bar["y"] == [3.0, 2.0, 0.5]
    assert bar["marker"]["color"] == ["#1f77b4", "#d62728", "#d62728"]


def _rgb(colour: str) -> np.ndarray:
    return np.array([float(part) for part in colour[colour.index("(") + 1:-1].split(",")[:3]])


def _colour_at(colorscale, zmin, zmax, z) -> np.ndarray:
    """Plotly's colour of ``z``: linear interpolation in RGB between the two stops around it."""
    position = (z - zmin) / (zmax - zmin)
    stops = [(p, _rgb(c)) for p, c in colorscale]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:], strict=False):
        if p0 <= position <= p1:
            return c0 + (c1 - c0) * ((position - p0) / (p1 - p0) if p1 > p0 else 0)
    raise AssertionError(f"{position} is outside the colorscale")


def _luminance(rgb: np.ndarray) -> float:
    """WCAG relative luminance of an sRGB colour (0-255 channels)."""
    channel = rgb / 255
    linear = np.where(channel <= 0.03928, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize("largest_error", [1, 3, 60])
def test_confusion_zero_is_white_and_one_error_stands_out(largest_error):
    matrix = np.diag([98, 97, 120, 3])
    matrix[0, 1], matrix[2, 3], matrix[3, 0] = 1, 2, largest_error
    trace = af.confusion_figure(matrix, list("abcd"))["data"][0]
    z = decode_array(trace["z"])
    colour = {(i, j): _colour_at(trace["colorscale"], trace["zmin"], trace["zmax"], z[i, j])
              for i in range(4) for j in range(4)}
    luminance = {cell: _luminance(rgb) for cell, rgb in colour.items()}
    zero_cells = [cell for cell in colour if matrix[cell] == 0]
    assert all(luminance[cell] == pytest.approx(1.0) for cell in zero_cells)  # white
    assert max(luminance[cell] for cell in colour if matrix[cell] > 0) < 0.9  # every count is coloured
    # WCAG contrast ratio between white and a single error: clearly visible (a light grey of 1.3 would not be)
    assert 1.05 / (luminance[(0, 1)] + 0.05) > 2.0
    # errors red (red channel well above blue), correct predictions blue
    assert colour[(0, 1)][0] - colour[(0, 1)][2] > 80 and colour[(3, 0)][0] - colour[(3, 0)][2] > 80
    assert all(colour[(k, k)][2] > colour[(k, k)][0] for k in range(4))
    # more errors are darker
    errors = sorted(((0, 1), (2, 3), (3, 0)), key=lambda cell: matrix[cell])
    assert [luminance[cell] for cell in errors] == sorted((luminance[cell] for cell in errors), reverse=True)


def test_one_map_across_images_is_a_panel_each_on_one_colour_scale():
    rng = np.random.default_rng(3)
    maps = [rng.random((5, 7), dtype=np.float32) * scale for scale in (1.0, 4.0, 2.0)]
    figure = af.unit_across_images(maps, ["#4", "#9", "#663"], "jet", "map 16 of conv", "activation")
    heatmaps = figure["data"]
    assert len(heatmaps) == 3
    for trace, values in zip(heatmaps, maps, strict=True):
        np.testing.assert_array_equal(decode_array(trace["z"]), values)
        assert (trace["zmin"], trace["zmax"]) == pytest.approx((min(m.min() for m in maps), max(m.max() for m in maps)))
    assert [trace["showscale"] for trace in heatmaps] == [False, False, True]
    assert heatmaps[-1]["colorbar"]["title"]["text"] == "activation"
    assert [note["text"] for note in figure["layout"]["annotations"]] == ["#4", "#9", "#663"]
    domains = [figure["layout"][f"xaxis{suffix}"]["domain"] for suffix in ("", "2", "3")]
    # side by side, not overlapping
    assert all(left[1] < right[0] for left, right in zip(domains, domains[1:], strict=False))
    assert all(figure["layout"][f"yaxis{s}"]["scaleanchor"] == f"x{s}" for s in ("", "2", "3"))  # square cells


def test_one_node_across_images_is_a_bar_each():
    figure = af.unit_across_images([np.float32(0.5), np.float32(-1.0)], ["#4", "your image u:…"], "jet",
                                   "node 3 of dense", "activation")
    (bars,) = figure["data"]
    assert bars["type"] == "bar" and bars["x"] == ["#4", "your image u:…"] and bars["y"] == [0.5, -1.0]
    assert figure["layout"]["yaxis"]["title"]["text"] == "activation"
