"""Charts, and the frame every figure shares: margins, titles kept clear of the mode bar, colour scales, image axes.

The charts are the small ones around a layer's grid: a note in place of an empty chart, the input image and the class
probabilities. Arrays in, Plotly figure dicts out; no Dash, no callback context.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import textwrap

import numpy as np
import plotly.colors
from PIL import Image

from app.core.errors import InvalidInput
from app.core.grid import COLORMAPS
from app.figures.codec import typed_array

# Plotly's names where they differ from matplotlib's (the blog's vocabulary).
_PLOTLY_SCALES = {"jet": "Jet", "greys": "Greys", "hot": "Hot", "rdbu": "RdBu"}
# What is drawn over a chart's data (a grid's separators, the true class's mark) takes no part in hover or clicks:
# those name the data underneath.
OVERLAY_TRACE = {"type": "scatter", "hoverinfo": "skip", "showlegend": False, "cliponaxis": True}
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


# Plotly does not wrap titles: a line longer than this runs out of a third of an 800 px window (a card ~220 px wide
# at 13 px, with the browser's scroll bar), so longer titles go on more lines (:func:`fitted_title`).
TITLE_LINE_CHARS = 30


def fitted_title(text: str, chars: int = TITLE_LINE_CHARS) -> str:
    """``text`` on as many lines as it needs to fit a narrow chart: broken before a parenthesis first, then between
    words (a word longer than a line is broken too)."""
    if len(text) <= chars:
        return text
    head, bracket, rest = text.partition(" (")
    parts = [head, "(" + rest] if bracket else [text]
    return "<br>".join(line for part in parts for line in textwrap.wrap(part, chars))


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


def image_axes(layout: dict) -> dict:
    """Hidden axes, y pointing down, square cells: how an image or a grid of maps is drawn."""
    layout["xaxis"] = {"visible": False, "constrain": "domain"}
    layout["yaxis"] = {"visible": False, "autorange": "reversed", "scaleanchor": "x", "constrain": "domain"}
    return layout


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


# Pictures and grids whose exact values are not sent travel as 8-bit codes of their colour range: a colour scale is
# drawn in at most 256 steps anyway.
COLOUR_LEVELS = 255


def colour_codes(grid: np.ndarray, low: float, high: float) -> np.ndarray:
    """``grid`` as uint8 codes 0-:data:`COLOUR_LEVELS` of the range ``low``-``high`` (clipped; NaN as 0).

    A code ``c`` stands for the value ``low + c * (high - low) / COLOUR_LEVELS``, within half a step of the true one.
    """
    step = (high - low) / COLOUR_LEVELS
    codes = np.rint((np.nan_to_num(grid, nan=low) - low) / step)
    return np.clip(codes, 0, COLOUR_LEVELS).astype(np.uint8)


# An input image with more pixels than this (a 64 x 64 one) travels as a PNG picture, not as numbers: a 224 x 224 x 3
# photo is ~600 kB as a JSON list and a tenth of that or less as a PNG. Smaller ones (the 28 x 28 digits) stay
# heatmaps, whose hover reads each pixel's value.
PICTURE_MIN_PIXELS = 64 * 64


@functools.lru_cache(maxsize=64)
def colour_lookup(name: str, reverse: bool = False) -> np.ndarray:
    """The colormap ``name`` as a table of 256 RGB colours (uint8 [256, 3]), interpolated between its stops as
    plotly.js interpolates them: code ``c`` of an 8-bit picture is drawn in colour ``c`` of the table."""
    stops = colorscale(name, reverse)
    positions = np.array([position for position, _ in stops])
    colours = np.array([plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(colour, "rgb")[0][0])
                        for _, colour in stops], dtype=np.float64)
    levels = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(levels, positions, colours[:, channel]) for channel in range(3)], axis=1)
    table = np.clip(np.round(table), 0, 255).astype(np.uint8)
    table.setflags(write=False)
    return table


# JPEG quality of a picture sent scaled down to its drawn size (Pillow's scale: 75 is its default).
SCALED_PICTURE_QUALITY = 85


def picture_source(pixels: np.ndarray, most_px: int | None = None) -> str:
    """RGB pixels (uint8 [H, W, 3]) as a ``data:image/png`` URL: the ``source`` of a Plotly image trace; scaled
    down (its aspect kept) so that neither side passes ``most_px``, when given, and then a JPEG (resampled, it is
    no longer the exact pixels; a photograph at 140 px is ~5 kB as a JPEG, ~40 kB as a PNG).

    Pillow at zlib's fastest level: its per-row filters shrink smooth pictures 2-3x against unfiltered rows (a
    224 px gradient: 3.7 vs 6.1 kB) in ~2 ms; the default level saves a fifth more bytes for three times the time.
    """
    picture = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB")
    buffer = io.BytesIO()
    if most_px is not None and max(picture.size) > most_px:
        scale = most_px / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.BILINEAR)
        picture.save(buffer, format="JPEG", quality=SCALED_PICTURE_QUALITY)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    picture.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def input_image_figure(image: np.ndarray, title: str = "", cmap: str = "greys", drawn_px: int | None = None) -> dict:
    """The input image [H, W, C]: a heatmap of its one channel, or a picture (a PNG in an image trace) of its three
    channels, or of its one channel in ``cmap``'s colours when it has more than :data:`PICTURE_MIN_PIXELS` pixels.
    A picture larger than ``drawn_px`` (when given: the size it is drawn at) is sent at that size, placed on the
    image's own pixel coordinates."""
    height, width = image.shape[:2]
    if image.shape[-1] == 3 or height * width > PICTURE_MIN_PIXELS:
        if image.shape[-1] == 3:
            pixels = rgb_pixels(image)
        else:
            channel = np.nan_to_num(np.asarray(image[..., 0], dtype=np.float32))
            low, high = float(channel.min()), float(channel.max())
            pixels = colour_lookup(cmap)[colour_codes(channel, low, high if high > low else low + 1.0)]
        trace = {"type": "image", "source": picture_source(pixels, drawn_px),
                 "hovertemplate": "row %{y}, col %{x}<extra></extra>"}
        if drawn_px is not None and max(height, width) > drawn_px:
            scale = drawn_px / max(height, width)
            step_x, step_y = width / max(1, round(width * scale)), height / max(1, round(height * scale))
            trace.update(dx=step_x, dy=step_y, x0=step_x / 2 - 0.5, y0=step_y / 2 - 0.5)
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
    return {"data": [trace], "layout": image_axes(figure_layout)}


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
