"""Tiling layer outputs into one 2-D grid, as the blog's ``img_grid_of_layer_activation`` does, without loops.

A conv/pool output [H, W, C] becomes C maps of H x W laid out ``per_row`` to a row, top-down, left to right.
A dense output [N] becomes N nodes of 1 x 1. Cells past the last unit are NaN (drawn empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The colour scales a grid may be drawn in, by the names the blog uses (matplotlib's); the first is the default.
COLORMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "jet", "greys", "hot", "rdbu")
MAPS_PER_ROW = 8
# Up to this many maps go 8 to a row, as in the blog; more form a near-square block (128 -> 12 x 11): 16 rows of 8
# left each map a few pixels in a wide box.
MAPS_IN_ROWS_OF_EIGHT = 64
# Up to this many nodes go in one row (the 10 outputs of a digit classifier read as a strip, in class order);
# more form a near-square block.
NODES_IN_A_STRIP = 16


@dataclass(frozen=True)
class GridLayout:
    """Where the units of one layer sit in the grid.

    Attributes:
        n_units: number of maps (conv/pool) or nodes (dense).
        unit_height, unit_width: size of one unit in cells (1 x 1 for a node).
        rows, cols: units per column and per row of the grid.
    """

    n_units: int
    unit_height: int
    unit_width: int
    rows: int
    cols: int

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the tiled grid in cells."""
        return (self.rows * self.unit_height, self.cols * self.unit_width)


def default_per_row(n_units: int, is_map: bool) -> int:
    """Up to 64 maps go 8 to a row, as in the blog, more a near-square block; up to 16 nodes form one strip, more a
    near-square block (100 -> 10 x 10)."""
    if is_map and n_units <= MAPS_IN_ROWS_OF_EIGHT:
        return MAPS_PER_ROW
    if is_map:
        return math.ceil(math.sqrt(n_units))
    return n_units if n_units <= NODES_IN_A_STRIP else max(1, math.ceil(math.sqrt(n_units)))


def layout_for(output_shape: tuple[int, ...], per_row: int | None = None) -> GridLayout:
    """The grid layout of a layer output of shape [H, W, C] (maps) or [N] (nodes), batch axis dropped."""
    if len(output_shape) == 3:
        height, width, n_units = output_shape
    elif len(output_shape) == 1:
        height, width, n_units = 1, 1, output_shape[0]
    else:
        raise ValueError(f"cannot tile an output of shape {output_shape}: expected [H, W, C] or [N]")
    cols = per_row or default_per_row(n_units, len(output_shape) == 3)
    cols = max(1, min(cols, n_units))
    return GridLayout(n_units, height, width, math.ceil(n_units / cols), cols)


def tile(activations: np.ndarray, per_row: int | None = None) -> tuple[np.ndarray, GridLayout]:
    """Tile one image's layer output into a single 2-D grid.

    Args:
        activations: [H, W, C] or [N] (batch axis dropped).
        per_row: units per grid row (default: 8 maps, or a square block of nodes).

    Returns:
        ``(grid, layout)``: float32 grid of shape ``layout.shape``, NaN past the last unit.
    """
    layout = layout_for(activations.shape, per_row)
    maps = activations.reshape(layout.unit_height, layout.unit_width, layout.n_units).astype(np.float32)
    padded = np.full(
        (layout.unit_height, layout.unit_width, layout.rows * layout.cols), np.nan, dtype=np.float32
    )
    padded[..., : layout.n_units] = maps
    # [h, w, rows*cols] -> [rows, h, cols, w]: unit k lands at row k // cols, column k % cols.
    grid = padded.reshape(layout.unit_height, layout.unit_width, layout.rows, layout.cols).transpose(2, 0, 3, 1)
    return grid.reshape(layout.shape), layout


def unit_at(layout: GridLayout, x: int, y: int) -> int | None:
    """The unit under grid cell (column ``x``, row ``y``), as ``assets/grid_hover.js`` names it; None outside the
    grid or past the last unit."""
    height, width = layout.shape
    if not (0 <= x < width and 0 <= y < height):
        return None
    unit = (y // layout.unit_height) * layout.cols + x // layout.unit_width
    return unit if unit < layout.n_units else None


def unit_coordinates(layout: GridLayout) -> np.ndarray:
    """For every grid cell: (unit number, row in the unit, column in the unit); unit -1 for padding.

    Returns:
        int32 array of shape [grid height, grid width, 3] (what the hover label shows, cell by cell).
    """
    ys, xs = np.indices(layout.shape)
    units = (ys // layout.unit_height) * layout.cols + xs // layout.unit_width
    units = np.where(units < layout.n_units, units, -1)
    return np.stack([units, ys % layout.unit_height, xs % layout.unit_width], axis=-1).astype(np.int32)


def standardize_and_clip(activations: np.ndarray) -> np.ndarray:
    """The blog's optional scaling, per map: standardise, then ``* 64 + 128`` and clip to [0, 255].

    A constant map is only centred (its values become 0 before clipping), exactly as in the blog.

    Args:
        activations: [H, W, C] or [N]; for [N] the whole vector counts as one map.
    """
    values = activations.astype(np.float32)
    axes = (0, 1) if values.ndim == 3 else (0,)
    centred = values - values.mean(axis=axes, keepdims=True)
    std = centred.std(axis=axes, keepdims=True)
    scaled = np.where(std != 0, centred / np.where(std == 0, 1, std) * 64 + 128, centred)
    return np.clip(scaled, 0, 255)


def screen_unit_size(layout: GridLayout, max_cells: int, drawn_px: tuple[int, int] | None = None) -> tuple[int, int]:
    """The size (rows, columns of cells) each map of a grid of ``layout`` is sent at: its own, or smaller so that
    the whole grid has at most ``max_cells`` cells and no more cells across than the ``drawn_px`` (width, height)
    it is drawn at. Never below 1 x 1; nodes (1 x 1 units) are never shrunk."""
    height, width = layout.unit_height, layout.unit_width
    if height == width == 1:
        return height, width
    scale = 1.0
    if drawn_px is not None:
        grid_height, grid_width = layout.shape
        scale = min(scale, drawn_px[0] / grid_width, drawn_px[1] / grid_height)
    cells = layout.rows * layout.cols * height * width
    scale = min(scale, math.sqrt(max_cells / cells))
    return max(1, min(height, math.floor(height * scale))), max(1, min(width, math.floor(width * scale)))


def _block_starts(size: int, shown: int, units: int) -> np.ndarray:
    """Where each of the ``shown`` blocks of a ``size``-long unit starts, for ``units`` units side by side."""
    within = (np.arange(shown) * size) // shown
    return (np.arange(units)[:, np.newaxis] * size + within).ravel()


def shrink_units(grid: np.ndarray, layout: GridLayout, unit_size: tuple[int, int]) -> np.ndarray:
    """A tiled ``grid`` with each map averaged down to ``unit_size`` (rows, columns) blocks, map by map.

    Every map of h x w cells becomes h' x w' blocks, block (i, j) the mean of its rows ``i*h//h'`` up to
    ``(i+1)*h//h'`` and columns likewise: no block mixes two maps, so in grid coordinates the blocks are evenly
    spaced, ``h / h'`` cells apart (what a heatmap's ``dy`` says). NaN padding stays NaN.
    """
    shown_height, shown_width = unit_size
    if (shown_height, shown_width) == (layout.unit_height, layout.unit_width):
        return grid
    rows = _block_starts(layout.unit_height, shown_height, layout.rows)
    cols = _block_starts(layout.unit_width, shown_width, layout.cols)
    sums = np.add.reduceat(np.add.reduceat(grid.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.diff(np.append(rows, grid.shape[0]))[:, np.newaxis] * np.diff(np.append(cols, grid.shape[1]))
    return (sums / counts).astype(np.float32)


# Paging: a layer with more maps than a page holds is shown a page at a time, in model order or most active first.
# The orders a page's maps may come in: the model's own (map 0, 1, 2, ...) or by the map's mean activation for the
# shown image, highest first.
MAP_ORDERS = ("model", "active")
# A page holds one of these many maps, the most at which a map is still readable; never fewer than the first.
PAGE_SIZES = (64, 128, 256, 512)
# Readable: a map drawn at least this wide, and each of its cells at least this wide, on the grid's drawn area.
READABLE_MAP_PX = 40
READABLE_CELL_PX = 8


def maps_per_page(output_shape: tuple[int, ...], drawn_px: tuple[int, int]) -> int | None:
    """How many maps a page of a layer with output ``output_shape`` holds when its grid is drawn on ``drawn_px``
    (width, height): the most of :data:`PAGE_SIZES` at which a map is drawn at least :data:`READABLE_MAP_PX` and a
    cell at least :data:`READABLE_CELL_PX` across (never fewer than the first size). None when the layer is not paged:
    nodes, or no more maps than a page holds (e.g. the 128 maps of 3 x 3 of the bundled model's Conv2D_3 fit one
    page, the 1,280 of 7 x 7 of MobileNetV2's out_relu take 20 pages of 64)."""
    if len(output_shape) != 3:
        return None
    height, width, n_units = output_shape
    per_page = PAGE_SIZES[0]
    for size in PAGE_SIZES[1:]:
        cols = default_per_row(size, True)
        rows = math.ceil(size / cols)
        cell_px = min(drawn_px[0] / (cols * width), drawn_px[1] / (rows * height))
        if cell_px < READABLE_CELL_PX or cell_px * min(height, width) < READABLE_MAP_PX:
            break
        per_page = size
    return per_page if n_units > per_page else None


def page_count(n_units: int, per_page: int) -> int:
    """How many pages ``n_units`` maps take, ``per_page`` to a page (at least one)."""
    return max(1, math.ceil(n_units / per_page))


def map_order(activations: np.ndarray, order: str) -> np.ndarray:
    """Every map number of one image's layer output [H, W, C] in ``order``: ``model`` (0, 1, 2, ...) or ``active``
    (by the map's mean activation, highest first; equal means in model order, non-finite means last).

    Raises:
        ValueError: an order not in :data:`MAP_ORDERS`.
    """
    n_units = activations.shape[-1]
    if order == "model":
        return np.arange(n_units)
    if order == "active":
        means = activations.reshape(-1, n_units).astype(np.float64).mean(axis=0)
        means = np.where(np.isnan(means), -np.inf, means)
        return np.lexsort((np.arange(n_units), -means))  # the last key sorts first: mean descending, then number
    raise ValueError(f"unknown map order {order!r}: expected one of {', '.join(MAP_ORDERS)}")


@dataclass(frozen=True, eq=False)
class MapPage:
    """One page of a paged layer's maps.

    Attributes:
        number: the page, from 1. count: how many pages the layer takes. per_page: the maps a full page holds.
        order: one of :data:`MAP_ORDERS`. n_units: the maps of the layer.
        units: the true map numbers (the model's) on this page, in the order shown.
    """

    number: int
    count: int
    per_page: int
    order: str
    n_units: int
    units: np.ndarray

    @property
    def first(self) -> int:
        """The place (from 1) of the page's first map in the order: 65 on page 2 of 64."""
        return (self.number - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        """The place (from 1) of the page's last map in the order."""
        return self.first + len(self.units) - 1

    @property
    def per_row(self) -> int:
        """Maps per grid row: a full page's, so every page, the last too, draws its maps at the same size."""
        return default_per_row(self.per_page, True)


def map_page(activations: np.ndarray, order: str, per_page: int, page: int | None = None,
             unit: int | None = None) -> MapPage:
    """The page of one image's layer output [H, W, C] a view asks for: ``page`` (from 1; past the last: the last),
    or when none is asked for the page holding map ``unit`` in ``order`` (none or no such map: the first).

    Raises:
        ValueError: an order not in :data:`MAP_ORDERS`.
    """
    ordered = map_order(activations, order)
    n_units = len(ordered)
    count = page_count(n_units, per_page)
    if page is None:
        page = 1
        if unit is not None and 0 <= unit < n_units:
            page = int(np.flatnonzero(ordered == unit)[0]) // per_page + 1
    number = min(max(1, page), count)
    units = ordered[(number - 1) * per_page: number * per_page]
    return MapPage(number, count, per_page, order, n_units, units)


def tile_page(activations: np.ndarray, page: MapPage) -> tuple[np.ndarray, GridLayout]:
    """The grid of one page's maps of a layer output [H, W, C] (see :func:`tile`), in the page's order, as many
    to a row as on a full page."""
    return tile(activations[..., page.units], page.per_row)
