"""Figure builders of the compare, finder and classes pages, checked on values."""

from __future__ import annotations

import numpy as np

from app.figures import comparison as af
from app.figures.heatmaps import decode_array


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
    assert trace["text"] == [["5", "1"], ["0", "7"]]
    np.testing.assert_allclose(decode_array(trace["z"]), np.log1p(matrix), rtol=1e-6)
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
