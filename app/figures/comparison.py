"""Figure builders of the compare, finder and classes pages: arrays in, Plotly figure dicts out.

No Dash, no callback context and no model loading here: the pages fetch numbers from the core and pass them in.
Heatmaps of layer grids reuse :func:`app.figures.grids.activation_heatmap`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.core.grid import tile
from app.figures.charts import chart_title, colorscale, top_margin
from app.figures.codec import typed_array
from app.figures.grids import GRID_MAX_CELLS, activation_heatmap


def value_range(grids: Sequence[np.ndarray]) -> tuple[float, float]:
    """(min, max) over several grids, ignoring NaN padding: the one colour scale that makes them comparable."""
    finite = [g[np.isfinite(g)] for g in grids]
    finite = [f for f in finite if f.size]
    if not finite:
        return (0.0, 1.0)
    low = float(min(f.min() for f in finite))
    high = float(max(f.max() for f in finite))
    return (low, high if high > low else low + 1e-6)


def symmetric_range(grids: Sequence[np.ndarray]) -> tuple[float, float]:
    """(-m, m) with m the largest |value| over the grids: a diverging scale centred on 0."""
    low, high = value_range(grids)
    bound = max(abs(low), abs(high), 1e-6)
    return (-bound, bound)


def difference_heatmap(difference: np.ndarray, title: str, zrange: tuple[float, float] | None = None,
                       values_url: str | None = None, size_px: tuple[int, int] | None = None,
                       max_cells: int = GRID_MAX_CELLS) -> dict:
    """A layer-output difference [H, W, C] or [N] tiled as a grid on the diverging RdBu scale centred on 0.

    Red is positive and blue negative (RdBu reversed), as usual for differences. ``values_url``, ``size_px`` and
    ``max_cells`` as for :func:`~app.figures.grids.activation_heatmap` (the grid then travels as colour codes,
    shrunk to what is drawn).
    """
    grid, layout = tile(difference)
    zrange = zrange or symmetric_range([grid])
    return activation_heatmap(grid, layout, "rdbu", reverse=True, zrange=zrange, title=title, zmid=0.0,
                              value_name="difference", values_url=values_url, size_px=size_px, max_cells=max_cells)


# The confusion matrix's colour index: 0 (white) for an empty cell; errors on a red ramp in (0, 0.5] whose first
# step is already clearly red, so a single error stands out next to a diagonal of hundreds; correct predictions on
# a pale-to-mid blue ramp in (0.5, 1], light enough for the dark count written on it.
CONFUSION_ERROR_START = 0.04
CONFUSION_CORRECT_START = 0.54
CONFUSION_COLORSCALE = [
    [0.0, "rgb(255,255,255)"],
    [CONFUSION_ERROR_START, "rgb(252,146,114)"],
    [0.5, "rgb(165,15,21)"],
    [0.52, "rgb(222,235,247)"],
    [CONFUSION_CORRECT_START, "rgb(222,235,247)"],
    [1.0, "rgb(107,174,214)"],
]
SELECTED_CELL_COLOR = "#222"


def confusion_colour_index(matrix: np.ndarray) -> np.ndarray:
    """Where each cell's count sits on :data:`CONFUSION_COLORSCALE` (zmin 0, zmax 1).

    Zero -> 0 (white); an error count c > 0 -> log-scaled between the first clear red and dark red, relative to the
    largest error; a correct count on the diagonal -> linear between pale and mid blue, relative to the largest.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    diagonal = np.eye(len(counts), dtype=bool)
    errors = np.where(diagonal, 0, counts)
    correct = np.where(diagonal, counts, 0)
    error_scale = np.log1p(errors) / np.log1p(max(errors.max(), 1))
    index = np.where(errors > 0, CONFUSION_ERROR_START + (0.5 - CONFUSION_ERROR_START) * error_scale, 0.0)
    correct_scale = correct / max(correct.max(), 1)
    index = np.where(correct > 0, CONFUSION_CORRECT_START + (1 - CONFUSION_CORRECT_START) * correct_scale, index)
    return index.astype(np.float32)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], selected: tuple[int, int] | None = None) -> dict:
    """The confusion matrix as a clickable heatmap with counts in the cells.

    Empty cells are white and unlabelled, errors red (one error already clearly so), correct predictions on the
    diagonal pale blue with their count (see :func:`confusion_colour_index`); the hover shows every count. Axes are
    class numbers (ticks show names) so a click returns (predicted, true).

    Args:
        matrix: [classes, classes] counts, row = true class, column = predicted class.
        class_names: tick labels.
        selected: (true, predicted) cell to outline.

    Returns:
        A figure dict (as :mod:`app.figures.grids` builds them); ``data[0]["customdata"]`` holds the counts.
    """
    matrix = np.asarray(matrix)
    n = len(matrix)
    ticks = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": list(class_names)}
    heatmap = {
        "type": "heatmap",
        "z": typed_array(confusion_colour_index(matrix)),
        "zmin": 0.0,
        "zmax": 1.0,
        "x": list(range(n)),
        "y": list(range(n)),
        "text": np.where(matrix > 0, matrix.astype(str), "").tolist(),
        "texttemplate": "%{text}",
        "customdata": matrix.tolist(),
        "colorscale": CONFUSION_COLORSCALE,
        "showscale": False,
        "xgap": 1,
        "ygap": 1,
        "hovertemplate": "true %{y} · predicted %{x}<br>%{customdata} images<extra></extra>",
    }
    shapes = []
    if selected is not None:
        true_class, predicted_class = selected
        shapes.append({"type": "rect", "x0": predicted_class - 0.5, "x1": predicted_class + 0.5,
                       "y0": true_class - 0.5, "y1": true_class + 0.5,
                       "line": {"color": SELECTED_CELL_COLOR, "width": 3}})
    title = f"confusion matrix · {int(matrix.trace())}/{int(matrix.sum())} correct"
    figure_layout = {
        "title": chart_title(title),
        "margin": {"l": 50, "r": 10, "t": top_margin(title), "b": 40},
        "plot_bgcolor": "#ddd",  # shows through the 1-px gaps between cells, so white cells keep their outline
        # exact ranges: no strip of background beside the outer cells
        "xaxis": {"title": {"text": "predicted"}, "range": [-0.5, n - 0.5], "constrain": "domain", **ticks},
        "yaxis": {"title": {"text": "true"}, "range": [n - 0.5, -0.5], "scaleanchor": "x", "constrain": "domain",
                  **ticks},
        "shapes": shapes,
    }
    return {"data": [heatmap], "layout": figure_layout}


def ranking_figure(scores: np.ndarray, signed: np.ndarray, ranking: np.ndarray, top: int, title: str) -> dict:
    """Bars of the ``top`` units that differ most (mean |difference|), red where A is larger, blue where B is."""
    units = np.asarray(ranking[:top])
    bar = {
        "type": "bar",
        "x": [f"#{u}" for u in units],
        "y": scores[units].astype(float).tolist(),
        "marker": {"color": np.where(signed[units] >= 0, "#d62728", "#1f77b4").tolist()},
        "customdata": np.stack([units, signed[units]], axis=-1).astype(float).tolist(),
        "hovertemplate": "unit %{customdata[0]}<br>mean |diff| %{y:.4g}<br>mean diff %{customdata[1]:.4g}"
        "<extra></extra>",
    }
    figure_layout = {
        "title": chart_title(title),
        "margin": {"l": 40, "r": 10, "t": top_margin(title), "b": 40},
        "plot_bgcolor": "white",
        "xaxis": {"type": "category", "title": {"text": "unit (red: larger for A, blue: larger for B)"}},
        "yaxis": {"title": {"text": "mean |A − B|"}},
    }
    return {"data": [bar], "layout": figure_layout}


# The gap between two images' panels, as a fraction of the figure's width.
PANEL_GAP = 0.02
UNIT_ACROSS_HEIGHT_PX = 300
PANEL_NAME_PX = 24  # each panel's image name, under it


def unit_across_images(values: Sequence[np.ndarray], names: Sequence[str], cmap: str, title: str,
                       value_name: str) -> dict:
    """One unit of a layer for every compared image, side by side on one colour scale: its map [H, W] per image as
    a row of panels titled with the image's name, or, for a node (a number per image), a bar per image.

    Args:
        values: the unit's output for each image (all maps, or all scalars).
        names: each image's name, in the same order.
        cmap: a colormap of :data:`app.core.grid.COLORMAPS` (maps only).
        title: the figure's title.
        value_name: what the values are, for the colour bar's or the value axis's title.
    """
    arrays = [np.asarray(v, dtype=np.float32) for v in values]
    if all(array.ndim == 0 for array in arrays):
        return _node_across_images([float(array) for array in arrays], names, title, value_name)
    low, high = value_range(arrays)
    width = (1 - PANEL_GAP * (len(arrays) - 1)) / len(arrays)
    data, layout = [], {"title": chart_title(title), "plot_bgcolor": "white",
                        "margin": {"l": 10, "r": 10, "t": top_margin(title), "b": PANEL_NAME_PX},
                        "annotations": []}
    for position, (array, name) in enumerate(zip(arrays, names, strict=True)):
        suffix = "" if position == 0 else str(position + 1)
        start = position * (width + PANEL_GAP)
        last = position == len(arrays) - 1
        data.append({
            "type": "heatmap", "z": typed_array(array), "zmin": low, "zmax": high, "colorscale": colorscale(cmap),
            "showscale": last, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
            "hovertemplate": f"{name}<br>row %{{y}}, col %{{x}}<br>{value_name} %{{z:.3g}}<extra></extra>",
            **({"colorbar": {"title": {"text": value_name, "side": "right"}, "thickness": 12}} if last else {}),
        })
        layout[f"xaxis{suffix}"] = {"visible": False, "domain": [start, start + width], "constrain": "domain"}
        layout[f"yaxis{suffix}"] = {"visible": False, "autorange": "reversed", "scaleanchor": f"x{suffix}",
                                    "constrain": "domain"}
        layout["annotations"].append({"text": name, "showarrow": False, "xref": "paper", "yref": "paper",
                                      "x": start + width / 2, "y": 0.0, "yanchor": "top",
                                      "font": {"size": 12}})
    return {"data": data, "layout": layout}


def _node_across_images(values: list[float], names: Sequence[str], title: str, value_name: str) -> dict:
    """A node's value for each image as a bar each."""
    trace = {"type": "bar", "x": list(names), "y": values, "marker": {"color": "#4c78a8"},
             "hovertemplate": f"%{{x}}<br>{value_name} %{{y:.4g}}<extra></extra>"}
    return {"data": [trace], "layout": {
        "title": chart_title(title), "margin": {"l": 50, "r": 10, "t": top_margin(title), "b": 40},
        "yaxis": {"title": {"text": value_name}, "zeroline": True}, "xaxis": {"type": "category"},
        "plot_bgcolor": "white"}}
