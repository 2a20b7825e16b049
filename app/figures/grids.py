"""Activation grids: a layer's tiled maps or nodes as one heatmap, with separators between maps, map and node labels,
a hover naming the unit, and the 8-bit colour codes (with a colour bar in true values) a grid travels as when its
exact values can be fetched.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.core.grid import GridLayout, MapPage, screen_unit_size, shrink_units
from app.figures.charts import (
    COLOUR_LEVELS,
    MARGIN,
    OVERLAY_TRACE,
    chart_title,
    colorscale,
    colour_codes,
    image_axes,
    top_margin,
)
from app.figures.codec import decode_array, typed_array

# Separators between maps are two lines, a dark one under a thin light one: every colour of every colormap
# contrasts with at least one of them (a single white line vanished on greys' white, a grey one on viridis' teal).
SEPARATOR_COLORS = (("rgba(0,0,0,0.6)", 3), ("rgba(255,255,255,0.95)", 1))
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


# Maps drawn narrower than this (in px) get no separator lines: a 1-2 px line every few px would hide them.
MIN_SEPARATED_MAP_PX = 8


def _separator_traces(layout: GridLayout, size_px: tuple[int, int] | None = None) -> list[dict]:
    """Thin lines between units, as two line traces (a dark one under a light one) with breaks between segments;
    none for node grids (1x1 units), where gaps would hide the values, nor for maps drawn smaller than
    :data:`MIN_SEPARATED_MAP_PX` at ``size_px`` (a thumbnail of 1,280 maps), which the lines would cover.

    Traces, not layout shapes: one path each for Plotly to redraw, not one element per line.
    """
    if layout.unit_height == 1 and layout.unit_width == 1:
        return []
    if size_px is not None and min(size_px[0] / layout.cols, size_px[1] / layout.rows) < MIN_SEPARATED_MAP_PX:
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


def map_label_image(layout: GridLayout, size_px: tuple[int, int] | None, top_px: int,
                    unit_numbers: Sequence[int] | None = None) -> dict | None:
    """Each map's number (its place in the grid, or ``unit_numbers[place]``: a page's true map numbers) as a light
    label on a dark box in its top-left corner, when a map is at least
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
    # more than 64 maps (up to 512 numbers): one image pixel a screen pixel, a third of the bytes of a sharp one
    scale = LABEL_IMAGE_SCALE if layout.n_units <= SHARP_LABELLED_MAPS else 1
    numbers = None if unit_numbers is None else tuple(int(unit) for unit in unit_numbers)
    source = _map_label_png(layout.unit_height, layout.unit_width, layout.cols, layout.n_units, round(cell_px, 1),
                            scale, numbers)
    return {"source": source, "xref": "x", "yref": "y", "x": -0.5, "y": -0.5, "sizex": grid_width,
            "sizey": grid_height, "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "above"}


LABEL_IMAGE_SCALE = 2  # image pixels per screen pixel: sharp on high-density screens too
SHARP_LABELLED_MAPS = 64


@functools.lru_cache(maxsize=32)  # a data URL of a few kB per grid layout and size: ~32 of them at most in use
def _map_label_png(unit_height: int, unit_width: int, cols: int, n_units: int, cell_px: float,
                   pixel_scale: int = LABEL_IMAGE_SCALE, numbers: tuple[int, ...] | None = None) -> str:
    """The map labels of a grid as a ``data:image/png`` URL (see :func:`map_label_image`), ``pixel_scale`` image
    pixels to a screen pixel; ``numbers``: what each place is labelled (default: the place)."""
    rows = -(-n_units // cols)
    scale = cell_px * pixel_scale
    image = Image.new("RGBA", (round(cols * unit_width * scale), round(rows * unit_height * scale)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=MAP_LABEL_FONT_PX * pixel_scale)
    pad = pixel_scale
    for unit in range(n_units):
        left = round((unit % cols) * unit_width * scale)
        top = round((unit // cols) * unit_height * scale)
        text = str(unit if numbers is None else numbers[unit])
        _, text_top, text_right, text_bottom = draw.textbbox((0, 0), text, font=font)
        draw.rectangle((left, top, left + text_right + 2 * pad, top + text_bottom - text_top + 2 * pad),
                       fill=(0, 0, 0, 115))
        draw.text((left + pad, top + pad - text_top), text, font=font, fill=(255, 255, 255, 242))
    encoded = io.BytesIO()
    # 16 colours (with their transparency) draw white text on a dark box: a third of the bytes of full RGBA
    image.quantize(colors=16, method=Image.Quantize.FASTOCTREE).save(encoded, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(encoded.getvalue()).decode("ascii")


# A grid whose exact values can be fetched (the explorer's) travels as 8-bit colour codes of its colour range: a
# colour scale is drawn in at most 256 steps anyway, and the view is a quarter of the float32 bytes (29 of 115 kB for
# the 21,632 cells of Conv2D_1). The hover label reads the exact values from the grid's URL on the first hover.
COLOURBAR_TICKS = 5
# The most cells a grid of codes travels with: ~85 kB of a view (a byte a cell, in base64). A grid with more (the
# 32 maps of 112 x 112 of a 224 px MobileNet's first layer have 401,408) has its maps averaged down; the hover
# still reads each cell's exact value from the grid's URL.
GRID_MAX_CELLS = 64_000


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


def _quantise(heatmap: dict, grid: np.ndarray, layout: GridLayout, values_url: str,
              size_px: tuple[int, int] | None = None, max_cells: int = GRID_MAX_CELLS) -> bool:
    """Turn ``heatmap``'s float32 ``z`` into colour codes with a colour bar in true values and ``values_url`` in its
    hover meta, each map averaged down (:func:`app.core.grid.shrink_units`) when the grid has more cells than
    ``max_cells`` or than the ``size_px`` it is drawn at; False (and nothing changed) when the grid has a
    non-finite unit value, which codes cannot show."""
    units = np.isfinite(grid)
    if units.sum() != layout.n_units * layout.unit_height * layout.unit_width:
        return False
    low, high = heatmap.get("zmin"), heatmap.get("zmax")
    if low is None or high is None:
        low, high = float(np.nanmin(grid)), float(np.nanmax(grid))
    if not high > low:
        high = low + 1.0  # a constant grid: every cell the lowest colour
    ticks = colourbar_ticks(low, high)
    shown_size = screen_unit_size(layout, max_cells, size_px)
    heatmap.update(
        z=typed_array(colour_codes(shrink_units(grid, layout, shown_size), low, high)),
        zmin=0,
        zmax=COLOUR_LEVELS,
    )
    if shown_size != (layout.unit_height, layout.unit_width):
        # blocks placed in the grid's own cell coordinates: separators, outlines, clicks and the hover's exact
        # values all keep addressing cells
        step_y, step_x = layout.unit_height / shown_size[0], layout.unit_width / shown_size[1]
        heatmap.update(x0=step_x / 2 - 0.5, dx=step_x, y0=step_y / 2 - 0.5, dy=step_y)
        heatmap["meta"]["shown"] = list(shown_size)
    heatmap["colorbar"] = {**heatmap["colorbar"], "tickmode": "array",
                           "tickvals": ((ticks - low) / (high - low) * COLOUR_LEVELS).tolist(),
                           "ticktext": [_tick_text(t) for t in ticks]}
    heatmap["meta"].update(values=values_url, range=[low, high], levels=COLOUR_LEVELS)
    return True


# The chosen unit's outline: bright on every colormap the app offers (none of them reaches magenta).
CHOSEN_UNIT_COLOR = "#ff00ff"


def chosen_unit_shape(layout: GridLayout | None, unit: int | None, unit_numbers: Sequence[int] | None = None) -> dict:
    """The outline of the chosen map or node on a grid of ``layout`` (whose places hold maps ``unit_numbers`` when
    given: a page); an invisible shape when none is chosen (or the grid has no such unit). Always a grid figure's
    first shape, so choosing another unit replaces it (``layout.shapes[0]``) without redrawing the grid."""
    if unit is not None and unit_numbers is not None:
        places = [place for place, number in enumerate(unit_numbers) if number == unit]
        unit = places[0] if places else None
    if layout is None or unit is None or not 0 <= unit < layout.n_units:
        return {"type": "rect", "visible": False, "x0": 0, "x1": 0, "y0": 0, "y1": 0}
    row, col = divmod(int(unit), layout.cols)
    x0, y0 = col * layout.unit_width - 0.5, row * layout.unit_height - 0.5
    return {"type": "rect", "x0": x0, "x1": x0 + layout.unit_width, "y0": y0, "y1": y0 + layout.unit_height,
            "line": {"color": CHOSEN_UNIT_COLOR, "width": 3}, "fillcolor": "rgba(0,0,0,0)"}


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
    step of the exact ones, NaN past the last unit), block by block when its maps were shrunk. For tests and API
    clients."""
    z = decode_array(trace["z"])
    meta = trace.get("meta") or {}
    if "levels" not in meta:
        return z
    low, high = meta["range"]
    values = low + z.astype(np.float64) * ((high - low) / meta["levels"])
    unit_height, unit_width, per_row, n_units = meta["grid"]
    unit_height, unit_width = meta.get("shown", (unit_height, unit_width))
    ys, xs = np.indices(z.shape)
    values[(ys // unit_height) * per_row + xs // unit_width >= n_units] = np.nan
    return values


def grid_hover_meta(layout: GridLayout, word: str, unit_names: Sequence[str] | None = None,
                    unit_numbers: Sequence[int] | None = None) -> dict:
    """What ``assets/grid_hover.js`` needs to name the unit under any cell of a grid from the cell's x/y alone.

    Args:
        layout: the grid's layout.
        word: "map" or "node", the word the label uses.
        unit_names: names of the units (the class names of an output layer), shown after the unit number.
        unit_numbers: the true map number of each place of a page of maps.

    Returns:
        ``{"grid": [unit height, unit width, units per row, units], "unit": word}``, plus ``"names"`` when given
        one per unit and ``"units"`` (the true numbers) for a page. The place under cell (x, y) is
        ``(y // unit height) * units per row + x // unit width``; its unit is ``units[place]`` on a page.
    """
    meta = {"grid": [layout.unit_height, layout.unit_width, layout.cols, layout.n_units], "unit": word}
    if unit_names is not None and len(unit_names) == layout.n_units:
        meta["names"] = [str(name) for name in unit_names]
    if unit_numbers is not None:
        meta["units"] = [int(unit) for unit in unit_numbers]
    return meta


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
    value_name: str = "activation",
    chosen_unit: int | None = None,
    max_cells: int = GRID_MAX_CELLS,
    unit_numbers: Sequence[int] | None = None,
) -> dict:
    """One heatmap of a tiled layer output, top-down, with separators and a hover naming the unit.

    Args:
        grid: the tiled grid (see :func:`app.core.grid.tile`), NaN where there is no unit.
        layout: its layout.
        cmap, reverse: colormap name and direction.
        zrange: fixed colour range (shared between figures that compare); default: the grid's own range.
        title: figure title.
        zmid: centre of a diverging scale (e.g. 0 for differences); with ``values_url``, the grid travels as codes
            only when ``zrange`` is symmetric about it.
        unit_word: "map" or "node" in the hover (default: from the layout).
        unit_names: names of the nodes (the class names of an output layer), written in their cells instead of
            the node numbers.
        size_px: the graph's (width, height) in px where the page knows it: maps drawn large enough there get
            their numbers as light labels (:func:`map_label_image`).
        values_url: where the grid's exact float32 values can be fetched (``app.api.models.get_grid``): the
            figure then carries colour codes (:func:`colour_codes`) instead of the values, and the hover label
            fetches the values on the first hover. Ignored for a grid with a non-finite unit value.
        value_name: what the values are, the colour bar's title ("activation", "B − A", "mean activation").
        chosen_unit: the map or node outlined as chosen (:func:`chosen_unit_shape`, the figure's first shape).
        max_cells: with ``values_url``, the most cells the codes may have (a page showing many grids shares its
            byte budget between them); maps are averaged down past it.
        unit_numbers: for a page of a layer's maps, the true map number of each place of ``grid``: labels, hover,
            the outline and the meta's ``units`` name maps by it.

    Returns:
        A figure dict whose ``data[0]["z"]`` is ``grid`` (float32 typed array; read it back with
        :func:`~app.figures.codec.decode_array`), or its codes with ``values_url``, and whose ``data[0]["meta"]`` is
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
        # the browser moves the chosen unit's outline in this colour (assets/explorer.js outlineUnit)
        "meta": {**grid_hover_meta(layout, word, unit_names, unit_numbers), "outline": CHOSEN_UNIT_COLOR},
        "colorbar": {"thickness": 12, "len": 0.9, "title": {"text": value_name, "side": "right"}},
    }
    labels = node_labels(layout, unit_names)
    if labels is not None:
        heatmap.update(text=labels, texttemplate="%{text}", textfont={"size": LABEL_FONT_PX}, xgap=1, ygap=1)
    if zrange is not None:
        heatmap["zmin"], heatmap["zmax"] = float(zrange[0]), float(zrange[1])
    if zmid is not None:
        heatmap["zmid"] = float(zmid)
    # codes span the colour range linearly: a diverging scale keeps its centre when the range is symmetric about it
    centred = zmid is None or (zrange is not None and math.isclose(zrange[0] + zrange[1], 2 * zmid,
                                                                    abs_tol=1e-12 * (abs(zrange[1]) + 1)))
    quantised = values_url is not None and centred and _quantise(heatmap, grid, layout, values_url, size_px,
                                                                 max_cells)
    if quantised:
        heatmap.pop("zmid", None)
    figure_layout = {
        "title": chart_title(title),
        "margin": {**MARGIN, "t": top_margin(title)},
        "shapes": [chosen_unit_shape(layout, chosen_unit, unit_numbers),
                   *(_empty_slot_shape(layout) if quantised else [])],
        "plot_bgcolor": "white",
        "uirevision": str(layout.shape),
    }
    traces = [heatmap, *_separator_traces(layout, size_px)]
    labels = map_label_image(layout, size_px, figure_layout["margin"]["t"], unit_numbers)
    if labels is not None:
        figure_layout["images"] = [labels]
    figure_layout = image_axes(figure_layout)
    if len(traces) > 1:
        # Scatter traces would widen an automatic range by a margin: the grid's own extent, fixed.
        height, width = layout.shape
        figure_layout["xaxis"].update(range=[-0.5, width - 0.5], autorange=False)
        figure_layout["yaxis"].update(range=[height - 0.5, -0.5], autorange=False)
    return {"data": traces, "layout": figure_layout}


# Dead units (never firing on the test set) on an activation grid: a small red "dead" at the bottom of each one's
# cell, and a sentence under the grid; without them a dead map or node looks like one that is merely quiet on this
# image.
DEAD_NOTE_COLOR = "#b2182b"
DEAD_SENTENCE_PX = 22


def mark_dead_units(figure: dict, layout: GridLayout, dead: np.ndarray, word: str,
                    unit_numbers: Sequence[int] | None = None) -> dict:
    """Mark the ``dead`` units (bool [units of the layer]) of ``figure``, a grid of ``layout`` (whose places hold
    maps ``unit_numbers`` when given: a page): "dead" at the bottom of each one's cell and "51 of 100 nodes never
    fire on the test set (marked dead)", counting the whole layer, under the grid. Returns ``figure`` (changed in
    place); nothing changes when no unit of the layer is dead."""
    dead_units = np.flatnonzero(dead)
    if not dead_units.size:
        return figure
    places = dead_units if unit_numbers is None else np.flatnonzero(np.asarray(dead)[np.asarray(unit_numbers)])
    notes = []
    for unit in places:
        row, col = divmod(int(unit), layout.cols)
        notes.append({"x": (col + 0.5) * layout.unit_width - 0.5, "y": (row + 1) * layout.unit_height - 0.5,
                      "xref": "x", "yref": "y", "text": "dead", "showarrow": False, "xanchor": "center",
                      "yanchor": "bottom", "font": {"size": 9, "color": DEAD_NOTE_COLOR},
                      "bgcolor": "rgba(255,255,255,0.8)", "borderpad": 0})
    # Anchored to the grid's lower left corner, not the figure's: a square grid in a tall figure ends far above
    # the figure's bottom, and the sentence belongs under the tiles it counts.
    notes.append({"x": -0.5, "y": layout.rows * layout.unit_height - 0.5, "xref": "x", "yref": "y",
                  "xanchor": "left", "yanchor": "top", "yshift": -4, "showarrow": False,
                  "font": {"size": 12, "color": DEAD_NOTE_COLOR},
                  "text": dead_sentence(int(dead_units.size), len(dead) if unit_numbers is not None
                                        else layout.n_units, word)})
    figure["layout"]["annotations"] = [*figure["layout"].get("annotations", []), *notes]
    figure["layout"]["margin"] = {**figure["layout"]["margin"], "b": DEAD_SENTENCE_PX}
    return figure


def mark_page(figure: dict, page: MapPage) -> dict:
    """Describe in ``figure``'s grid meta the page of maps it shows: ``page`` = {"page": number, "pages": count,
    "per_row", "first", "last", "of": the layer's maps, "order"}, what Explore's page controls show
    (``assets/explorer.js`` pageControls; the true map numbers are the meta's ``units``). Returns ``figure``
    (changed in place)."""
    figure["data"][0]["meta"]["page"] = {"page": page.number, "pages": page.count, "per_row": page.per_row,
                                         "first": page.first, "last": page.last, "of": page.n_units,
                                         "order": page.order}
    return figure


def dead_sentence(dead: int, units: int, word: str) -> str:
    """``51 of 100 nodes never fire on the test set (marked dead)``."""
    return f"{dead} of {units} {word}s never fire on the test set (marked dead)"
