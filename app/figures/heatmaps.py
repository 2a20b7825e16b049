"""Figure builders: arrays in, Plotly figure dicts out. No Dash, no callback context; tested on shapes and values.

Figures are plain dicts (what ``dcc.Graph`` takes) with arrays as typed-array specs: no per-figure validation.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.colors
from PIL import Image, ImageDraw, ImageFont

from app.core.errors import InvalidInput
from app.core.grid import COLORMAPS, GridLayout

# Plotly's names where they differ from matplotlib's (the blog's vocabulary).
_PLOTLY_SCALES = {"jet": "Jet", "greys": "Greys", "hot": "Hot", "rdbu": "RdBu"}
# Separators between maps are two lines, a dark one under a thin light one: every colour of every colormap
# contrasts with at least one of them (a single white line vanished on greys' white, a grey one on viridis' teal).
SEPARATOR_COLORS = (("rgba(0,0,0,0.6)", 3), ("rgba(255,255,255,0.95)", 1))
# What is drawn over a grid (separators, map numbers) takes no part in hover or clicks: those name the grid's cell.
OVERLAY_TRACE = {"type": "scatter", "hoverinfo": "skip", "showlegend": False, "cliponaxis": True}
# Node grids write each node's label (its number, or its class name on the output layer) into its cell when
# there are at most this many nodes (a 12 x 12 block); more would not fit in a readable font.
MAX_LABELLED_NODES = 144
LABEL_FONT_PX = 10
# Map grids number each map in its top-left corner when a map is drawn at least this large (a 3-digit number in a
# 9 px font is ~17 px wide), up to this many maps; white on a translucent dark box reads under every colormap.
MIN_LABELLED_MAP_PX = 20
MAX_LABELLED_MAPS = 512
MAP_LABEL_FONT_PX = 9
COLORBAR_PX = 60  # the colour bar and its tick labels, right of the plot area
MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}
# Plotly's mode bar (the toolbar shown on hover) sits in the top 2-28 px of a graph, right-aligned and as wide as its
# buttons (~250 px): a title centred in a narrow card runs under it. Titles are therefore anchored to the top of the
# plot area, and the top margin keeps a band of MODEBAR_PX above them free for the mode bar.
MODEBAR_PX = 30
TITLE_FONT_PX = 13
TITLE_LINE_HEIGHT = 1.3  # a line of text takes about 1.3 x its font size
TITLE_PAD_PX = 6


def title_height(text: str, font_px: int = TITLE_FONT_PX) -> int:
    """Pixels a title of ``text`` takes (one line per ``<br>``), its padding above the plot area included."""
    if not text:
        return 0
    lines = text.count("<br>") + 1
    return math.ceil(lines * font_px * TITLE_LINE_HEIGHT) + TITLE_PAD_PX


def chart_title(text: str) -> dict:
    """A figure title placed just above the plot area (not centred in the top margin), below the mode bar's band.

    Use with :func:`top_margin`; ``tests/unit/figures/test_titles.py`` checks every figure builder keeps the two
    in step.
    """
    return {"text": text, "font": {"size": TITLE_FONT_PX}, "yref": "paper", "y": 1, "yanchor": "bottom",
            "pad": {"b": TITLE_PAD_PX}}


def top_margin(text: str, above: int = 0) -> int:
    """The top margin a figure with title ``text`` needs: the mode bar's band plus the title (plus ``above`` px of
    other labels between the title and the plot area); a thin edge without a title."""
    if not text:
        return MARGIN["t"] + above
    return MODEBAR_PX + title_height(text) + above


@functools.lru_cache(maxsize=64)
def _resolved_scale(name: str, reverse: bool) -> tuple[tuple[float, str], ...]:
    scale = plotly.colors.get_colorscale(_PLOTLY_SCALES.get(name, name.capitalize()) + ("_r" if reverse else ""))
    return tuple((float(position), color) for position, color in scale)


def colorscale(name: str, reverse: bool = False) -> list[list]:
    """The colorscale of a colormap from :data:`COLORMAPS` as explicit [position, colour] stops.

    Explicit stops, because plotly.js itself knows only some names (no inferno or magma, no ``_r`` suffix).
    Names follow matplotlib, as in the blog: ``greys`` runs from white (low) to black (high).
    """
    if name not in COLORMAPS:
        raise InvalidInput(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return [list(stop) for stop in _resolved_scale(name, bool(reverse))]


def _separator_traces(layout: GridLayout) -> list[dict]:
    """Thin lines between units, as two line traces (a dark one under a light one) with breaks between segments;
    none for node grids (1x1 units), where gaps would hide the values.

    Traces, not layout shapes: one path each for Plotly to redraw, not one element per line.
    """
    if layout.unit_height == 1 and layout.unit_width == 1:
        return []
    height, width = layout.shape
    x, y = [], []
    for c in range(1, layout.cols):
        x += [c * layout.unit_width - 0.5, c * layout.unit_width - 0.5, None]
        y += [-0.5, height - 0.5, None]
    for r in range(1, layout.rows):
        x += [-0.5, width - 0.5, None]
        y += [r * layout.unit_height - 0.5, r * layout.unit_height - 0.5, None]
    return [{**OVERLAY_TRACE, "mode": "lines", "x": x, "y": y, "line": {"color": color, "width": line_width}}
            for color, line_width in SEPARATOR_COLORS]


def node_labels(layout: GridLayout, names: Sequence[str] | None = None) -> list[list[str]] | None:
    """The text written in each cell of a node grid: the node's number, or ``names[node]`` (e.g. class names of
    the output layer); "" for padding. None for map grids and for grids too large to label legibly."""
    if not (layout.unit_height == layout.unit_width == 1) or layout.n_units > MAX_LABELLED_NODES:
        return None
    labels = [str(n) for n in range(layout.n_units)]
    if names is not None and len(names) == layout.n_units:
        labels = [str(name) for name in names]
    labels += [""] * (layout.rows * layout.cols - layout.n_units)
    return [labels[r * layout.cols:(r + 1) * layout.cols] for r in range(layout.rows)]


def map_label_image(layout: GridLayout, size_px: tuple[int, int] | None, top_px: int) -> dict | None:
    """Each map's number as a light label on a dark box in its top-left corner, when a map is at least
    :data:`MIN_LABELLED_MAP_PX` wide at the graph's size; None for node grids (see :func:`node_labels`), for an
    unknown size and for maps too small.

    The labels are one transparent PNG laid over the grid (a Plotly layout image), drawn once per grid layout and
    size: Plotly lays out and measures every text it draws at every redraw, which made 128 map numbers (as a text
    trace) cost ~80 ms of each image change in headless chromium; one image costs next to nothing.

    Args:
        size_px: the graph's (width, height) in px, as its page draws it.
        top_px: the figure's top margin (mode bar band and title).

    Returns:
        A Plotly layout image spanning the grid, or None.
    """
    if size_px is None or layout.unit_height == layout.unit_width == 1 or layout.n_units > MAX_LABELLED_MAPS:
        return None
    width = size_px[0] - MARGIN["l"] - MARGIN["r"] - COLORBAR_PX
    height = size_px[1] - top_px - MARGIN["b"]
    grid_height, grid_width = layout.shape
    cell_px = min(width / grid_width, height / grid_height)  # square cells fit the smaller ratio
    if cell_px * min(layout.unit_height, layout.unit_width) < MIN_LABELLED_MAP_PX:
        return None
    source = _map_label_png(layout.unit_height, layout.unit_width, layout.cols, layout.n_units, round(cell_px, 1))
    return {"source": source, "xref": "x", "yref": "y", "x": -0.5, "y": -0.5, "sizex": grid_width,
            "sizey": grid_height, "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "above"}


LABEL_IMAGE_SCALE = 2  # image pixels per screen pixel: sharp on high-density screens too


@functools.lru_cache(maxsize=32)  # a data URL of a few kB per grid layout and size: ~32 of them at most in use
def _map_label_png(unit_height: int, unit_width: int, cols: int, n_units: int, cell_px: float) -> str:
    """The map labels of a grid as a ``data:image/png`` URL (see :func:`map_label_image`)."""
    rows = -(-n_units // cols)
    scale = cell_px * LABEL_IMAGE_SCALE
    image = Image.new("RGBA", (round(cols * unit_width * scale), round(rows * unit_height * scale)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=MAP_LABEL_FONT_PX * LABEL_IMAGE_SCALE)
    pad = LABEL_IMAGE_SCALE
    for unit in range(n_units):
        left = round((unit % cols) * unit_width * scale)
        top = round((unit // cols) * unit_height * scale)
        text = str(unit)
        _, text_top, text_right, text_bottom = draw.textbbox((0, 0), text, font=font)
        draw.rectangle((left, top, left + text_right + 2 * pad, top + text_bottom - text_top + 2 * pad),
                       fill=(0, 0, 0, 115))
        draw.text((left + pad, top + pad - text_top), text, font=font, fill=(255, 255, 255, 242))
    encoded = io.BytesIO()
    # 16 colours (with their transparency) draw white text on a dark box: a third of the bytes of full RGBA
    image.quantize(colors=16, method=Image.Quantize.FASTOCTREE).save(encoded, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(encoded.getvalue()).decode("ascii")


def typed_array(values: np.ndarray) -> dict:
    """A numpy array as a plotly.js typed-array spec (base64 bytes, dtype, shape), decoded by the browser.

    Plotly 7 sends arrays this way too, but only after validating a ``go.Figure``, which costs ~15 ms per figure
    here; building the spec directly keeps a view change within a few milliseconds.
    """
    dtype = {np.dtype(np.float32): "f4", np.dtype(np.float64): "f8", np.dtype(np.int32): "i4",
             np.dtype(np.int16): "i2", np.dtype(np.uint8): "u1", np.dtype(np.int8): "i1"}[values.dtype]
    return {
        "dtype": dtype,
        "bdata": base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii"),
        "shape": ", ".join(str(d) for d in values.shape),
    }


def decode_array(spec) -> np.ndarray:
    """The numpy array of a :func:`typed_array` spec (or of a plain list), for tests and API clients."""
    if not isinstance(spec, dict):
        return np.asarray(spec)
    dtype = {"f4": np.float32, "f8": np.float64, "i4": np.int32, "i2": np.int16, "u1": np.uint8, "i1": np.int8}
    shape = tuple(int(d) for d in spec["shape"].split(","))
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype[spec["dtype"]]).reshape(shape)


# A grid whose exact values can be fetched (the explorer's) travels as 8-bit colour codes of its colour range: a
# colour scale is drawn in at most 256 steps anyway, and the view is a quarter of the float32 bytes (29 of 115 kB for
# the 21,632 cells of Conv2D_1). The hover label reads the exact values from the grid's URL on the first hover.
COLOUR_LEVELS = 255
COLOURBAR_TICKS = 5


def colour_codes(grid: np.ndarray, low: float, high: float) -> np.ndarray:
    """``grid`` as uint8 codes 0-:data:`COLOUR_LEVELS` of the range ``low``-``high`` (clipped; NaN as 0).

    A code ``c`` stands for the value ``low + c * (high - low) / COLOUR_LEVELS``, within half a step of the true one.
    """
    step = (high - low) / COLOUR_LEVELS
    codes = np.rint((np.nan_to_num(grid, nan=low) - low) / step)
    return np.clip(codes, 0, COLOUR_LEVELS).astype(np.uint8)


def colourbar_ticks(low: float, high: float, count: int = COLOURBAR_TICKS) -> np.ndarray:
    """About ``count`` round values (multiples of 1, 2, 2.5 or 5 times a power of ten) between ``low`` and ``high``."""
    raw_step = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9) * step
    ticks = first + step * np.arange(int(math.floor((high - first) / step + 1e-9)) + 1)
    return np.round(ticks / step) * step  # 0.30000000000000004 -> 0.3


def _tick_text(value: float) -> str:
    """A tick value as Plotly would write it: the shortest form, no ``-0``."""
    return f"{float(value) + 0.0:.6g}"


def _quantise(heatmap: dict, grid: np.ndarray, layout: GridLayout, values_url: str) -> bool:
    """Turn ``heatmap``'s float32 ``z`` into colour codes with a colour bar in true values and ``values_url`` in its
    hover meta; False (and nothing changed) when the grid has a non-finite unit value, which codes cannot show."""
    units = np.isfinite(grid)
    if units.sum() != layout.n_units * layout.unit_height * layout.unit_width:
        return False
    low, high = heatmap.get("zmin"), heatmap.get("zmax")
    if low is None or high is None:
        low, high = float(np.nanmin(grid)), float(np.nanmax(grid))
    if not high > low:
        high = low + 1.0  # a constant grid: every cell the lowest colour
    ticks = colourbar_ticks(low, high)
    heatmap.update(
        z=typed_array(colour_codes(grid, low, high)),
        zmin=0,
        zmax=COLOUR_LEVELS,
    )
    heatmap["colorbar"] = {**heatmap["colorbar"], "tickmode": "array",
                           "tickvals": ((ticks - low) / (high - low) * COLOUR_LEVELS).tolist(),
                           "ticktext": [_tick_text(t) for t in ticks]}
    heatmap["meta"].update(values=values_url, range=[low, high], levels=COLOUR_LEVELS)
    return True


def _empty_slot_shape(layout: GridLayout) -> list[dict]:
    """A blank box over the slots past the last unit (codes have no NaN to leave them empty)."""
    filled = layout.n_units - (layout.rows - 1) * layout.cols
    if filled >= layout.cols:
        return []
    top = (layout.rows - 1) * layout.unit_height - 0.5
    return [{"type": "rect", "x0": filled * layout.unit_width - 0.5, "x1": layout.cols * layout.unit_width - 0.5,
             "y0": top, "y1": top + layout.unit_height, "fillcolor": "white", "line": {"width": 0}, "layer": "above"}]


def heatmap_values(trace: dict) -> np.ndarray:
    """The values a heatmap trace shows: its ``z``, or for colour codes the values they stand for (within half a
    step of the exact ones, NaN past the last unit). For tests and API clients."""
    z = decode_array(trace["z"])
    meta = trace.get("meta") or {}
    if "levels" not in meta:
        return z
    low, high = meta["range"]
    values = low + z.astype(np.float64) * ((high - low) / meta["levels"])
    unit_height, unit_width, per_row, n_units = meta["grid"]
    ys, xs = np.indices(z.shape)
    values[(ys // unit_height) * per_row + xs // unit_width >= n_units] = np.nan
    return values


def grid_hover_meta(layout: GridLayout, word: str, unit_names: Sequence[str] | None = None) -> dict:
    """What ``assets/grid_hover.js`` needs to name the unit under any cell of a grid from the cell's x/y alone.

    Args:
        layout: the grid's layout.
        word: "map" or "node", the word the label uses.
        unit_names: names of the units (the class names of an output layer), shown after the unit number.

    Returns:
        ``{"grid": [unit height, unit width, units per row, units], "unit": word}``, plus ``"names"`` when given
        one per unit. The unit under cell (x, y) is ``(y // unit height) * units per row + x // unit width``.
    """
    meta = {"grid": [layout.unit_height, layout.unit_width, layout.cols, layout.n_units], "unit": word}
    if unit_names is not None and len(unit_names) == layout.n_units:
        meta["names"] = [str(name) for name in unit_names]
    return meta


def _image_axes(layout: dict) -> dict:
    """Hidden axes, y pointing down, square cells: how an image or a grid of maps is drawn."""
    layout["xaxis"] = {"visible": False, "constrain": "domain"}
    layout["yaxis"] = {"visible": False, "autorange": "reversed", "scaleanchor": "x", "constrain": "domain"}
    return layout


def activation_heatmap(
    grid: np.ndarray,
    layout: GridLayout,
    cmap: str = "viridis",
    reverse: bool = False,
    zrange: tuple[float, float] | None = None,
    title: str = "",
    zmid: float | None = None,
    unit_word: str | None = None,
    unit_names: Sequence[str] | None = None,
    size_px: tuple[int, int] | None = None,
    values_url: str | None = None,
) -> dict:
    """One heatmap of a tiled layer output, top-down, with separators and a hover naming the unit.

    Args:
        grid: the tiled grid (see :func:`app.core.grid.tile`), NaN where there is no unit.
        layout: its layout.
        cmap, reverse: colormap name and direction.
        zrange: fixed colour range (shared between figures that compare); default: the grid's own range.
        title: figure title.
        zmid: centre of a diverging scale (e.g. 0 for differences).
        unit_word: "map" or "node" in the hover (default: from the layout).
        unit_names: names of the nodes (the class names of an output layer), written in their cells instead of
            the node numbers.
        size_px: the graph's (width, height) in px where the page knows it: maps drawn large enough there get
            their numbers as light labels (:func:`map_label_annotations`).
        values_url: where the grid's exact float32 values can be fetched (``app.api.models.get_grid``): the
            figure then carries colour codes (:func:`colour_codes`) instead of the values, and the hover label
            fetches the values on the first hover. Ignored for a grid with a non-finite unit value.

    Returns:
        A figure dict whose ``data[0]["z"]`` is ``grid`` (float32 typed array; read it back with
        :func:`decode_array`), or its codes with ``values_url``, and whose ``data[0]["meta"]`` is
        :func:`grid_hover_meta` (plus ``values``, ``range`` and ``levels`` with codes).
    """
    word = unit_word or ("node" if layout.unit_height == layout.unit_width == 1 else "map")
    heatmap = {
        "type": "heatmap",
        "z": typed_array(grid.astype(np.float32, copy=False)),
        "colorscale": colorscale(cmap, reverse),
        # assets/grid_hover.js draws the label from the cell's x/y and ``meta``; Plotly's own would need three
        # numbers per cell sent with the figure (173 kB of a 297 kB view of Conv2D_1).
        "hoverinfo": "none",
        "meta": grid_hover_meta(layout, word, unit_names),
        "colorbar": {"thickness": 12, "len": 0.9},
    }
    labels = node_labels(layout, unit_names)
    if labels is not None:
        heatmap.update(text=labels, texttemplate="%{text}", textfont={"size": LABEL_FONT_PX}, xgap=1, ygap=1)
    if zrange is not None:
        heatmap["zmin"], heatmap["zmax"] = float(zrange[0]), float(zrange[1])
    if zmid is not None:
        heatmap["zmid"] = float(zmid)
    quantised = values_url is not None and zmid is None and _quantise(heatmap, grid, layout, values_url)
    figure_layout = {
        "title": chart_title(title),
        "margin": {**MARGIN, "t": top_margin(title)},
        "shapes": _empty_slot_shape(layout) if quantised else [],
        "plot_bgcolor": "white",
        "uirevision": str(layout.shape),
    }
    traces = [heatmap, *_separator_traces(layout)]
    labels = map_label_image(layout, size_px, figure_layout["margin"]["t"])
    if labels is not None:
        figure_layout["images"] = [labels]
    figure_layout = _image_axes(figure_layout)
    if len(traces) > 1:
        # Scatter traces would widen an automatic range by a margin: the grid's own extent, fixed.
        height, width = layout.shape
        figure_layout["xaxis"].update(range=[-0.5, width - 0.5], autorange=False)
        figure_layout["yaxis"].update(range=[height - 0.5, -0.5], autorange=False)
    return {"data": traces, "layout": figure_layout}


NOTE_LINE_CHARS = 48  # annotations do not wrap: ~48 characters fit a 320 px wide chart


def note_figure(text: str) -> dict:
    """A figure with no data that says why (e.g. a difference of an image with itself), instead of a blank chart."""
    note = {"text": "<br>".join(textwrap.wrap(text, NOTE_LINE_CHARS)), "showarrow": False,
            "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "font": {"color": "#555", "size": TITLE_FONT_PX}}
    return {"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False}, "margin": MARGIN,
                                   "plot_bgcolor": "white", "annotations": [note]}}


def rgb_pixels(image: np.ndarray) -> np.ndarray:
    """An RGB image [H, W, 3] as uint8 pixels: values in [0, 1] or [0, 255] as they are, any other range (a
    standardised image, values in [-1, 1]) stretched from its minimum to its maximum; non-finite pixels black."""
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    if low >= 0 and high <= 1:
        values = values * 255
    elif low < 0 or high > 255:
        values = (values - low) / ((high - low) or 1) * 255
    return np.clip(np.where(finite, values, 0), 0, 255).round().astype(np.uint8)


def input_image_figure(image: np.ndarray, title: str = "", cmap: str = "greys") -> dict:
    """The input image [H, W, C] as a heatmap (one channel) or an RGB picture (three channels)."""
    if image.shape[-1] == 3:
        trace = {"type": "image", "z": rgb_pixels(image).tolist()}
    else:
        trace = {
            "type": "heatmap",
            "z": typed_array(image[..., 0].astype(np.float32)),
            "colorscale": colorscale(cmap),
            "showscale": False,
            "hovertemplate": "row %{y}, col %{x}<br>pixel %{z:.3f}<extra></extra>",
        }
    figure_layout = {"title": chart_title(title), "margin": {**MARGIN, "t": top_margin(title)},
                     "plot_bgcolor": "white"}
    return {"data": [trace], "layout": _image_axes(figure_layout)}


PREDICTED_COLOR = "#d62728"
OTHER_COLOR = "#9bb7d4"
TRUE_COLOR = "#2ca02c"


def probability_bars(probabilities: np.ndarray, class_names: list[str], label: int | None) -> dict:
    """Class probabilities as bars: the predicted class in red, the true class outlined and marked in green."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = int(probabilities.argmax())
    n_classes = len(probabilities)
    bar = {
        "type": "bar",
        "x": list(class_names),
        "y": probabilities.tolist(),
        "marker": {
            "color": [PREDICTED_COLOR if i == predicted else OTHER_COLOR for i in range(n_classes)],
            "line": {"color": TRUE_COLOR, "width": [3 if i == label else 0 for i in range(n_classes)]},
        },
        "hovertemplate": "class %{x}<br>p = %{y:.4f}<extra></extra>",
    }
    traces = [bar]
    if label is not None and 0 <= label < len(class_names):
        # A text trace, not an annotation: cheaper to redraw, and it stays inside the plot area (an arrow of a
        # 100 % bar ran into the title).
        traces.append({**OVERLAY_TRACE, "mode": "text", "x": [class_names[label]],
                       "y": [float(np.nan_to_num(probabilities[label]))], "text": ["true"],
                       "textposition": "top center", "textfont": {"color": TRUE_COLOR, "size": 12}})
    title = f"predicted {class_names[predicted]} ({probabilities[predicted]:.1%})"
    if label is not None:  # a drawn or uploaded image has no true class to be right or wrong about
        title += " · correct" if predicted == label else " · wrong"
    if not np.isfinite(probabilities).all():
        title = "no prediction: the output is not finite"
    figure_layout = {
        "title": chart_title(title),
        "margin": {"l": 40, "r": 10, "t": top_margin(title), "b": 30},
        "yaxis": {"range": [0, 1.2], "title": {"text": "probability"}},
        "xaxis": {"type": "category"},
        "plot_bgcolor": "white",
        "showlegend": False,
    }
    return {"data": traces, "layout": figure_layout}
