"""Figures of the Features page: a layer's optimal inputs as a grid laid out like its activation grid, the first conv
layer's kernels, and attribution maps over the input image."""

from __future__ import annotations

import numpy as np

from app.core.grid import GridLayout, default_per_row, tile
from app.figures.heatmaps import (
    MARGIN,
    _image_axes,
    activation_heatmap,
    chart_title,
    colorscale,
    top_margin,
    typed_array,
)

DEAD_FILL = "rgba(214,39,40,0.35)"
OVERLAY_OPACITY = 0.55


# The attribution methods (app.core.attribution.METHODS) as the pages name them.
METHOD_LABELS = {"gradient": "Gradient", "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM",
                 "integrated_gradients": "Integrated gradients"}


def feature_grid(images: np.ndarray, dead: np.ndarray, is_map: bool, value_range: tuple[float, float],
                 title: str = "") -> tuple[dict, GridLayout]:
    """The optimal inputs of every unit of a layer in one grid, unit k where map (or node) k sits in the layer's
    activation grid (same number of units per row), dead units covered in red with a cross.

    Args:
        images: [units, H, W, C] optimal inputs (the channels are averaged for the grid).
        dead: bool [units].
        is_map: whether the layer has maps (8 to a row) or nodes (a strip or a square block), as its activation grid.
        value_range: the test set's (low, high): one grey scale for every unit.

    Returns:
        ``(figure, layout)``; hover labels and clicks name the unit from a cell's x/y and ``layout``, as on
        activation grids (:func:`app.core.grid.unit_at`).
    """
    n_units = len(images)
    stacked = np.moveaxis(images.mean(axis=-1), 0, -1)  # [H, W, units]
    grid, layout = tile(stacked, default_per_row(n_units, is_map))
    figure = activation_heatmap(grid, layout, "greys", reverse=True, zrange=value_range, title=title,
                                unit_word="map" if is_map else "node")
    figure["data"][0]["showscale"] = False
    shapes = figure["layout"]["shapes"]
    for unit in np.flatnonzero(dead):
        row, col = divmod(int(unit), layout.cols)
        x0, y0 = col * layout.unit_width - 0.5, row * layout.unit_height - 0.5
        x1, y1 = x0 + layout.unit_width, y0 + layout.unit_height
        shapes.append({"type": "rect", "x0": x0, "x1": x1, "y0": y0, "y1": y1, "fillcolor": DEAD_FILL,
                       "line": {"width": 0}})
        shapes.append({"type": "line", "x0": x0, "x1": x1, "y0": y0, "y1": y1, "line": {"color": "#d62728"}})
        shapes.append({"type": "line", "x0": x0, "x1": x1, "y0": y1, "y1": y0, "line": {"color": "#d62728"}})
    return figure, layout


def kernel_grid(kernels: np.ndarray, title: str = "") -> dict:
    """The first conv layer's kernels [kh, kw, C, units] (averaged over C), 8 to a row, on a diverging scale
    centred on 0 (positive weights red, negative blue)."""
    grid, layout = tile(kernels.mean(axis=2), default_per_row(kernels.shape[-1], True))
    limit = float(np.nanmax(np.abs(grid))) or 1.0
    figure = activation_heatmap(grid, layout, "rdbu", reverse=True, zrange=(-limit, limit), title=title, zmid=0.0)
    figure["data"][0]["hovertemplate"] = "kernel %{customdata[0]}<br>weight %{z:.4f}<extra></extra>"
    return figure


def attribution_figure(image: np.ndarray, heat: np.ndarray, signed: bool, title: str = "") -> dict:
    """``heat`` [H, W] over the input ``image`` [H, W, C] (shown in grey): a half-transparent heat layer, on a
    diverging scale centred on 0 for signed maps (integrated gradients) and a hot scale for the others."""
    base = {
        "type": "heatmap", "z": typed_array(image.mean(axis=-1).astype(np.float32)),
        "colorscale": colorscale("greys", reverse=True), "showscale": False, "hoverinfo": "skip",
    }
    overlay = {
        "type": "heatmap", "z": typed_array(np.asarray(heat, dtype=np.float32)), "opacity": OVERLAY_OPACITY,
        "colorscale": colorscale("rdbu", reverse=True) if signed else colorscale("hot", reverse=True),
        "hovertemplate": "row %{y}, col %{x}<br>attribution %{z:.4g}<extra></extra>",
        "colorbar": {"thickness": 12, "len": 0.9},
    }
    if signed:
        limit = float(np.nanmax(np.abs(heat))) or 1.0
        overlay.update(zmin=-limit, zmax=limit, zmid=0.0)
    figure_layout = {"title": chart_title(title), "margin": {**MARGIN, "t": top_margin(title)},
                     "plot_bgcolor": "white"}
    return {"data": [base, overlay], "layout": _image_axes(figure_layout)}
