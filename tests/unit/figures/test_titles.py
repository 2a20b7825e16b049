"""Every figure builder's title (and any label above the plot) stays clear of Plotly's mode bar.

The rule, in pixels from the top of the graph: the mode bar occupies the band [0, MODEBAR_BAND_PX) across the
graph's width (it is right-aligned but as wide as ~250 px, so in a narrow card it reaches any centred title). Text
above the plot area must start below that band. A title is anchored to the top of the plot area (``yref`` paper,
``y`` 1, ``yanchor`` bottom), so its box spans [t − pad − height, t − pad] with t the top margin and height
lines × font size × 1.3; an annotation at paper y ≥ 1 anchored at the bottom spans [t − height, t]. A title centred
in the top margin (Plotly's default placement) fails unless the margin is tall enough for both.
Graphs that hide the mode bar are checked in ``tests/unit/pages/test_chart_configs.py``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from app.core.grid import map_page, tile, tile_page
from app.figures import charts, codec, comparison, grids, training

MODEBAR_BAND_PX = 30  # measured in the browser: the mode bar's buttons end 28 px below the graph's top
LINE_HEIGHT = 1.3
PLOTLY_DEFAULT_TITLE_FONT = 17


def _height(text: str, font_size: float) -> float:
    return (text.count("<br>") + 1) * font_size * LINE_HEIGHT


def modebar_overlaps(layout: dict) -> list[str]:
    """What text above the plot area can fall into the mode bar's band (empty when nothing can)."""
    problems = []
    top = layout.get("margin", {}).get("t", 100)  # Plotly's default top margin
    title = layout.get("title") or {}
    text = title.get("text") if isinstance(title, dict) else title
    if text:
        size = title.get("font", {}).get("size", PLOTLY_DEFAULT_TITLE_FONT)
        height = _height(text, size)
        if title.get("yref") == "paper" and title.get("y", 0) >= 1 and title.get("yanchor") == "bottom":
            upper_edge = top - title.get("pad", {}).get("b", 0) - height
        else:  # centred in the top margin
            upper_edge = top / 2 - height / 2
        if upper_edge < MODEBAR_BAND_PX:
            problems.append(f"title {text!r} starts {upper_edge:.0f} px from the top")
    for note in layout.get("annotations", []):
        if note.get("yref") == "paper" and note.get("y", 0) >= 1:
            size = note.get("font", {}).get("size", 12)
            bottom_anchored = note.get("yanchor") == "bottom"
            upper_edge = top - _height(note["text"], size) if bottom_anchored else top - 2 * _height(note["text"], size)
            if upper_edge < MODEBAR_BAND_PX:
                problems.append(f"label {note['text']!r} starts {upper_edge:.0f} px from the top")
    return problems


def _samples() -> dict[str, list[dict]]:
    """Every figure builder called as the pages call it, with short and long titles."""
    rng = np.random.default_rng(0)
    maps = tile(rng.random((3, 3, 12), dtype=np.float32))
    nodes = tile(rng.random(10, dtype=np.float32))
    epochs = [{"epoch": e, "loss": 1 / e, "val_loss": 1.1 / e, "accuracy": 1 - 1 / (e + 1),
               "val_accuracy": 1 - 1.2 / (e + 1), "learning_rate": 1e-3 / e} for e in (1, 2, 3)]
    scores = rng.random(12)
    many_maps = rng.random((7, 7, 300), dtype=np.float32)
    page = map_page(many_maps, "active", 64, 3)
    page_maps = tile_page(many_maps, page)
    return {
        "activation_heatmap": [grids.activation_heatmap(*maps, title="Conv2D_3 · 3×3×128: 128 maps of image 12"),
                               grids.activation_heatmap(*nodes, title="Dense_2<br>10 nodes"),
                               grids.activation_heatmap(*maps)],
        "mark_dead_units": [grids.mark_dead_units(grids.activation_heatmap(*maps, title="Conv2D_3 · 3×3×128"),
                                                  maps[1], np.arange(maps[1].n_units) % 3 == 0, "map")],
        "mark_page": [grids.mark_page(grids.activation_heatmap(*page_maps, title="out_relu · 7×7×1280: page 3 of 20",
                                                               unit_numbers=page.units), page)],
        "input_image_figure": [charts.input_image_figure(rng.random((28, 28, 1)), "input · class 4"),
                               charts.input_image_figure(rng.random((8, 8, 3)), "")],
        "probability_bars": [charts.probability_bars(rng.dirichlet(np.ones(10)), list("0123456789"), 4)],
        "note_figure": [charts.note_figure("A and B are the same image (#3): its difference with itself is zero.")],
        "difference_heatmap": [comparison.difference_heatmap(rng.normal(size=(3, 3, 12)), "image 7 − image 12")],
        "confusion_figure": [comparison.confusion_figure(np.eye(10, dtype=int) * 90 + 1, list("0123456789"), (4, 9))],
        "unit_across_images": [
            comparison.unit_across_images(list(rng.random((3, 5, 5), dtype=np.float32)), ["#4", "#9", "#663"],
                                          "jet", "map 16 of Conv2D_2 in every image · one colour scale", "activation"),
            comparison.unit_across_images([np.float32(1.0), np.float32(2.0)], ["#4", "#9"], "jet",
                                          "node 3 of Dense_1 in every image", "activation")],
        "ranking_figure": [comparison.ranking_figure(scores, scores - 0.5, np.argsort(-scores), 8, "maps that differ")],
        "training_curves": [training.training_curves([], 5), training.training_curves(epochs, 5, "job 3 · mnist")],
        "learning_rate_curve": [training.learning_rate_curve([], 5), training.learning_rate_curve(epochs, 5)],
    }


SAMPLES = _samples()
NOT_FIGURES = {"typed_array", "chart_title", "image_axes", "grid_hover_meta", "chosen_unit_shape"}


def test_every_figure_builder_is_checked():
    builders = {
        name
        for module in (grids, charts, codec, comparison, training)
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not name.startswith("_")
        and inspect.signature(function).return_annotation == "dict" and name not in NOT_FIGURES
    }
    assert builders == set(SAMPLES)


@pytest.mark.parametrize("builder", sorted(SAMPLES))
def test_titles_start_below_the_mode_bar(builder):
    for figure in SAMPLES[builder]:
        assert modebar_overlaps(figure["layout"]) == []


def test_the_rule_catches_a_centred_title_under_a_short_margin():
    assert modebar_overlaps({"title": {"text": "mean of class 4", "font": {"size": 13}}, "margin": {"t": 40}})
    assert modebar_overlaps({"title": {"text": "x"}, "margin": {"t": 30}, "annotations": []})
    subplot_label = {"text": "loss", "yref": "paper", "y": 1, "yanchor": "bottom", "font": {"size": 13}}
    assert modebar_overlaps({"margin": {"t": 40}, "annotations": [subplot_label]})
    assert not modebar_overlaps({"margin": {"t": 60}, "annotations": [subplot_label]})
