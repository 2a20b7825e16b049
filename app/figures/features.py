"""Figures of the Features page: a layer's optimal inputs as a grid laid out like its activation grid, the first conv
layer's kernels, and attribution maps over the input image."""

from __future__ import annotations

import numpy as np
import plotly.colors

from app.core.grid import GridLayout, default_per_row, tile
from app.figures.charts import MARGIN, chart_title, image_axes, top_margin
from app.figures.codec import typed_array
from app.figures.grids import activation_heatmap

DEAD_FILL = "rgba(214,39,40,0.35)"
OVERLAY_OPACITY = 0.55
# Each tile's unit number: light text on a dark translucent box in the tile's top-left corner, readable on black,
# white and grey tiles alike. Text (annotations), not a picture as on the explorer's grids: a layer's grid is drawn
# once, not at every image change, and its numbers are then text the browser can find and read.
TILE_NUMBER_FONT_PX = 10
TILE_NUMBER_BOX = "rgba(0,0,0,0.6)"
# The first conv layer's kernels go this many to a row: 32 kernels of 3x3 form a block of 12 x 24 cells that fills
# a narrow column, where 8 to a row made a thin 24 x 12 strip with kernels a few pixels wide.
KERNELS_PER_ROW = 4


# The attribution methods (app.core.attribution.METHODS) as the pages name them.
METHOD_LABELS = {"gradient": "Gradient", "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM",
                 "integrated_gradients": "Integrated gradients"}


def tile_numbers(layout: GridLayout) -> list[dict]:
    """One annotation per unit of a grid of ``layout``: its number in the top-left corner of its tile."""
    numbers = []
    for unit in range(layout.n_units):
        row, col = divmod(unit, layout.cols)
        numbers.append({"x": col * layout.unit_width - 0.5, "y": row * layout.unit_height - 0.5, "xref": "x",
                        "yref": "y", "text": str(unit), "showarrow": False, "xanchor": "left", "yanchor": "top",
                        "font": {"size": TILE_NUMBER_FONT_PX, "color": "white"}, "bgcolor": TILE_NUMBER_BOX,
                        "borderpad": 1})
    return numbers


def feature_grid(images: np.ndarray, dead: np.ndarray, is_map: bool, value_range: tuple[float, float],
                 title: str = "") -> tuple[dict, GridLayout]:
    """The optimal inputs of every unit of a layer in one grid, unit k where map (or node) k sits in the layer's
    activation grid (same number of units per row), each numbered in its top-left corner (:func:`tile_numbers`),
    dead units covered in red with a cross.

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
    figure["layout"]["annotations"] = tile_numbers(layout)
    return figure, layout


def crops_figure(crops: np.ndarray, indices: np.ndarray, value_range: tuple[float, float], title: str = "") -> dict:
    """Crops [k, h, w, C] of test images in one row (channels averaged, one grey scale, NaN blank), each tile
    labelled with its test image's number (``#123``)."""
    stacked = np.moveaxis(crops.mean(axis=-1), 0, -1)
    grid, layout = tile(stacked, len(crops))
    figure = activation_heatmap(grid, layout, "greys", reverse=True, zrange=value_range, title=title,
                                unit_word="top image", unit_names=[f"test image {int(i)}" for i in indices])
    figure["data"][0]["showscale"] = False
    numbers = tile_numbers(layout)
    for number, index in zip(numbers, indices, strict=True):
        number["text"] = f"#{int(index)}"
    figure["layout"]["annotations"] = numbers
    return figure


def kernel_grid(kernels: np.ndarray, title: str = "") -> dict:
    """The first conv layer's kernels [kh, kw, C, units] (averaged over C), :data:`KERNELS_PER_ROW` to a row, each
    numbered like its map (:func:`tile_numbers`), on a diverging scale centred on 0 (positive weights red, negative
    blue) with a colour bar titled "weight"."""
    grid, layout = tile(kernels.mean(axis=2), min(KERNELS_PER_ROW, kernels.shape[-1]))
    limit = float(np.nanmax(np.abs(grid))) or 1.0
    figure = activation_heatmap(grid, layout, "rdbu", reverse=True, zrange=(-limit, limit), title=title, zmid=0.0,
                                unit_word="kernel", value_name="weight")
    figure["layout"]["annotations"] = tile_numbers(layout)
    return figure


# The attribution's colour scales: where the attribution is 0 they are transparent, so they never tint the digit
# there (an opaque white or yellow end washed the whole image out, and a grey digit under "hot" turned pink); the
# colour comes in with the size of the value, fully at FULL_COLOUR_AT of the range. Signed maps (integrated gradients)
# are red where a pixel adds to the class's logit and blue where it takes away; magnitudes run yellow to dark red.
ZERO_COLOR = "rgba(255,255,255,0)"
FULL_COLOUR_AT = 0.5


def _faded(scale: list[list], zero: float) -> list[list]:
    """``scale`` with each stop's alpha rising from 0 at position ``zero`` (where the attribution is 0) to 1 halfway
    to either end; the stop at ``zero`` becomes transparent white."""
    faded = []
    for position, color in scale:
        distance = abs(position - zero) / max(zero, 1 - zero)
        if distance == 0:
            faded.append([position, ZERO_COLOR])
            continue
        red, green, blue = plotly.colors.unlabel_rgb(color)
        alpha = min(1.0, distance / FULL_COLOUR_AT)
        faded.append([position, f"rgba({red:.0f},{green:.0f},{blue:.0f},{alpha:.3g})"])
    return faded


SIGNED_SCALE = _faded([[float(p), c] for p, c in plotly.colors.get_colorscale("RdBu_r")], 0.5)
MAGNITUDE_SCALE = _faded([[float(p), c] for p, c in plotly.colors.get_colorscale("YlOrRd")], 0.0)
# The digit under the attribution: white background, strokes mid-grey (not black), so the colours on top stay
# readable on the strokes too.
DIGIT_SCALE = [[0.0, "rgb(255,255,255)"], [1.0, "rgb(110,110,110)"]]

# What the overlay's values are, as its colour bar says; the per-pixel value's name in the hover label.
COLORBAR_TITLES = {
    "gradient": "|gradient|",
    "smoothgrad": "SmoothGrad |gradient|",
    "gradcam": "Grad-CAM (ReLU of weighted maps)",
    "integrated_gradients": "integrated gradients (contribution to the logit)",
}
# Without a method (Compare's small cards): short, so the bar's title fits a card 130 px high.
UNNAMED_TITLES = {False: "attribution", True: "attribution (±)"}


# A colour bar's title runs along the bar; one longer than this goes on two lines, its parenthesis on the second
# ("integrated gradients (contribution to the logit)" on one line is longer than Explore's 260 px high figure).
BAR_TITLE_CHARS = 24


def _bar_title(text: str) -> str:
    """``text`` as the colour bar shows it: a long one broken before its parenthesis."""
    words, bracket, rest = text.partition(" (")
    return f"{words}<br>({rest}" if bracket and len(text) > BAR_TITLE_CHARS else text


def completeness_sentence(attribution_sum: float, logit_difference: float) -> str:
    """Integrated gradients' check in words: the attributions add up to how much the class's logit rises from the
    black baseline image to this one (``attributions add up to the logit change from black: 15.5 of 15.5``)."""
    return (f"attributions add up to the logit change from black: {attribution_sum:.3g} of "
            f"{logit_difference:.3g}")


def _largest(values: np.ndarray) -> float:
    """The largest finite absolute value of ``values`` (1 when there is none, or it is 0: a blank scale)."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def attribution_figure(image: np.ndarray, heat: np.ndarray, signed: bool, title: str = "",
                       method: str | None = None) -> dict:
    """``heat`` [H, W] as a half-transparent overlay (opacity :data:`OVERLAY_OPACITY`) on the input ``image``
    [H, W, C], whose channels are averaged into a grey digit on white.

    The overlay's colour scale is transparent where the attribution is 0: :data:`SIGNED_SCALE` (blue −, red +,
    centred on 0) for ``signed`` maps (integrated gradients), :data:`MAGNITUDE_SCALE` from 0 for the others. Its
    colour bar is titled with what the values are: :data:`COLORBAR_TITLES` of ``method`` (one of
    :data:`app.core.attribution.METHODS`), or a plain "attribution" when no method is given.
    """
    heat = np.asarray(heat, dtype=np.float32)
    base = {
        "type": "heatmap", "z": typed_array(image.mean(axis=-1).astype(np.float32)),
        "colorscale": DIGIT_SCALE, "showscale": False, "hoverinfo": "skip",
    }
    what = COLORBAR_TITLES.get(method, UNNAMED_TITLES[bool(signed)])
    limit = _largest(heat)
    overlay = {
        "type": "heatmap", "z": typed_array(heat), "opacity": OVERLAY_OPACITY,
        "colorscale": SIGNED_SCALE if signed else MAGNITUDE_SCALE,
        "zmin": -limit if signed else 0.0, "zmax": limit,
        "hovertemplate": f"row %{{y}}, col %{{x}}<br>{what} %{{z:.4g}}<extra></extra>",
        "colorbar": {"thickness": 12, "len": 0.9, "outlinewidth": 0,
                     "title": {"text": _bar_title(what), "side": "right", "font": {"size": 11}}},
    }
    if signed:
        overlay["zmid"] = 0.0
    figure_layout = {"title": chart_title(title), "margin": {**MARGIN, "t": top_margin(title)},
                     "plot_bgcolor": "white"}
    return {"data": [base, overlay], "layout": image_axes(figure_layout)}
