"""Figure builders of the compare, finder and classes pages: arrays in, Plotly figure dicts out.

No Dash, no callback context and no model loading here: the pages fetch numbers from the core and pass them in.
Heatmaps of layer grids reuse :func:`app.figures.heatmaps.activation_heatmap`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.core.grid import tile
from app.figures.heatmaps import activation_heatmap, typed_array


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


def difference_heatmap(difference: np.ndarray, title: str, zrange: tuple[float, float] | None = None) -> dict:
    """A layer-output difference [H, W, C] or [N] tiled as a grid on the diverging RdBu scale centred on 0.

    Red is positive and blue negative (RdBu reversed), as usual for differences.
    """
    grid, layout = tile(difference)
    zrange = zrange or symmetric_range([grid])
    return activation_heatmap(grid, layout, "rdbu", reverse=True, zrange=zrange, title=title, zmid=0.0)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], selected: tuple[int, int] | None = None) -> dict:
    """The confusion matrix as a clickable heatmap with counts in the cells.

    Colour follows log(1 + count) so the few confusions stay visible next to the large diagonal; the text and
    hover show the real counts. Axes are class numbers (ticks show names) so a click returns (predicted, true).

    Args:
        matrix: [classes, classes] counts, row = true class, column = predicted class.
        class_names: tick labels.
        selected: (true, predicted) cell to outline.

    Returns:
        A figure dict (as :mod:`app.figures.heatmaps` builds them); ``data[0]["text"]`` holds the counts.
    """
    matrix = np.asarray(matrix)
    n = len(matrix)
    ticks = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": list(class_names)}
    heatmap = {
        "type": "heatmap",
        "z": typed_array(np.log1p(matrix).astype(np.float32)),
        "x": list(range(n)),
        "y": list(range(n)),
        "text": matrix.astype(str).tolist(),
        "texttemplate": "%{text}",
        "customdata": matrix.tolist(),
        "colorscale": "Blues",
        "showscale": False,
        "xgap": 1,
        "ygap": 1,
        "hovertemplate": "true %{y} · predicted %{x}<br>%{customdata} images<extra></extra>",
    }
    shapes = []
    if selected is not None:
        true_class, predicted_class = selected
        shapes.append({"type": "rect", "x0": predicted_class - 0.5, "x1": predicted_class + 0.5,
                       "y0": true_class - 0.5, "y1": true_class + 0.5, "line": {"color": "#d62728", "width": 3}})
    figure_layout = {
        "title": {"text": f"confusion matrix · {int(matrix.trace())}/{int(matrix.sum())} correct",
                  "font": {"size": 13}},
        "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        "plot_bgcolor": "white",
        "xaxis": {"title": {"text": "predicted"}, **ticks},
        "yaxis": {"title": {"text": "true"}, "autorange": "reversed", "scaleanchor": "x", **ticks},
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
        "title": {"text": title, "font": {"size": 13}},
        "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
        "plot_bgcolor": "white",
        "xaxis": {"type": "category", "title": {"text": "unit (red: larger for A, blue: larger for B)"}},
        "yaxis": {"title": {"text": "mean |A − B|"}},
    }
    return {"data": [bar], "layout": figure_layout}
