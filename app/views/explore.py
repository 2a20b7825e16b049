"""The explorer's view: one model, one layer, one image (a test image or the user's own), drawn in a colormap.

An :class:`ExploreView` is the whole state of the page; it reads itself from a link's query
(:meth:`ExploreView.from_query`) and writes the query that reopens it (:meth:`ExploreView.to_query`). The page and
the API ask :func:`explore` for what the view shows: the layer's grid, the image, the class probabilities.

A layer with more maps than a page holds (:func:`layer_page_size`) is shown one page at a time, in model order or
most active first (``page=3&order=active``); its tiles keep their true map numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.activations import ImageOutOfRange, LayerInfo
from app.core.attribution import METHODS
from app.core.errors import InvalidInput
from app.core.grid import (
    COLORMAPS,
    MAP_ORDERS,
    GridLayout,
    MapPage,
    map_page,
    maps_per_page,
    standardize_and_clip,
    tile_page,
)
from app.core.parsing import parse_int, shown
from app.core.statistics import StatisticsCache
from app.core.store import LoadedModel, ModelStore
from app.core.units import compute_layer_range
from app.core.user_images import UserImageStore, names_user_image
from app.views.images import ImageRef, image_ref, of_subject
from app.views.query import (
    LinkView,
    choice_value,
    flag_value,
    image_value,
    name_value,
    number_value,
    page_value,
    query_of,
    text_value,
)

# Explore's grid plot area (width, height in px) on a 1400 x 900 window: what a page of maps must be readable on.
GRID_AREA_PX = (820, 500)
# What the orders of a paged layer's maps are called on the page.
ORDER_LABELS = {"model": "model order", "active": "most active first"}


@dataclass(frozen=True)
class ExploreView(LinkView):
    """What the explorer shows, as its link says it.

    Attributes:
        model, layer: names (None: the page's defaults); checked against the store when the view is drawn.
        image: a test-image number, or a user image's id ``u:<id>`` (None: left out of the link, image 0).
        cmap: one of :data:`app.core.grid.COLORMAPS` (None: left out of the link, the first).
        reverse: the colormap reversed.
        scale: the blog's standardise-and-clip scaling per map.
        fixed: one colour scale for the layer on every image (its test-set percentiles), instead of each image's
            own range; stepping through images then shows real change.
        unit: the map or node chosen on the grid (None: none).
        method: "where the model looks": one of :data:`app.core.attribution.METHODS`, or "" (off).
        target: the class that method explains (None: the predicted class).
        page: the page (from 1) of a layer with more maps than a page holds (None: the page holding ``unit``, else
            the first); ignored for a layer of one page.
        order: the order of a paged layer's maps, one of :data:`app.core.grid.MAP_ORDERS` (``model``: left out of
            the link).
    """

    model: str | None = None
    layer: str | None = None
    image: int | str | None = 0
    cmap: str | None = COLORMAPS[0]
    reverse: bool = False
    scale: bool = False
    fixed: bool = False
    unit: int | None = None
    method: str = ""
    target: int | None = None
    page: int | None = None
    order: str = MAP_ORDERS[0]

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[ExploreView, list[str]]:
        """The view a link's query asks for (values as text, or lists of text as Dash passes repeated ones), and a
        sentence per value that could not be read; such a value falls back to its default."""
        notices: list[str] = []
        image = image_value(query, "image", notices, "showing 0")
        unit = number_value(query, "unit", "Unit", notices, "no unit chosen")
        target = number_value(query, "target", "Class", notices, "explaining the predicted class")
        page = page_value(query, "page", notices)
        order = text_value(query, "order")
        if order and order not in MAP_ORDERS:
            notices.append(f"Order {shown(order)} is not one of {', '.join(MAP_ORDERS)}; showing model order.")
        return cls(model=name_value(query, "model"), layer=name_value(query, "layer"),
                   image=0 if image is None else image, cmap=choice_value(query, "cmap", COLORMAPS),
                   reverse=flag_value(query, "reverse"), scale=flag_value(query, "scale"),
                   fixed=flag_value(query, "fixed"), unit=unit,
                   method=choice_value(query, "method", ("", *METHODS)), target=target, page=page,
                   order=choice_value(query, "order", MAP_ORDERS)), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&image=…``: the query that reopens this view (``image=0`` kept, the switches only
        when on, the order only when not the model's)."""
        return query_of({"model": self.model, "layer": self.layer, "image": self.image, "cmap": self.cmap,
                         "reverse": self.reverse, "scale": self.scale, "fixed": self.fixed, "unit": self.unit,
                         "method": self.method or None, "target": self.target, "page": self.page,
                         "order": None if self.order == MAP_ORDERS[0] else self.order})


@dataclass(frozen=True, eq=False)
class ExploreResult:
    """What an :class:`ExploreView` shows, as plain data.

    Attributes:
        loaded: the model. layer: the layer shown. image: the image shown.
        grid: the layer's output tiled [rows, cols] (NaN past the last unit), standardised if the view says so.
        grid_layout: where the units sit in ``grid``.
        probabilities: the class probabilities of the image.
        unit_names: the class names when the layer is the output layer (its nodes are the classes), else None.
        colour_range: the layer's fixed colour scale when the view asks for one, else None (the grid's own range).
        page: the page of maps shown, for a layer of more than one page (``grid`` then holds its maps only, in its
            order); else None.
    """

    loaded: LoadedModel
    layer: LayerInfo
    image: ImageRef
    grid: np.ndarray
    grid_layout: GridLayout
    probabilities: np.ndarray
    unit_names: list[str] | None
    colour_range: tuple[float, float] | None = None
    page: MapPage | None = None


def layer_page_size(info: LayerInfo) -> int | None:
    """How many maps a page of ``info``'s grid holds when the layer has more than that (it is then shown a page at
    a time, :func:`app.core.grid.maps_per_page` on Explore's grid area); None for a layer of one page."""
    return maps_per_page(info.output_shape, GRID_AREA_PX)


def numbered_test_image(loaded: LoadedModel, raw: Any) -> ImageRef:
    """The test image a number box or a link asks for; the message names the valid range.

    Raises:
        InvalidInput: not a whole number. ImageOutOfRange: outside the test set.
    """
    valid_range = f"a test image number, 0-{loaded.engine.n_images - 1}"
    if raw is None:  # a number box outside its min/max sends no value at all
        raise InvalidInput(f"Type {valid_range}.")
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e18:
        raw = int(raw)
    try:
        index = parse_int(raw, "the test image")
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}: type {valid_range}.") from None
    if not 0 <= index < loaded.engine.n_images:
        raise ImageOutOfRange(f"Image {index} is out of range: type {valid_range}.")
    return of_subject(loaded, index)


def explore(store: ModelStore, user_images: UserImageStore, view: ExploreView,
            statistics: StatisticsCache | None = None) -> ExploreResult:
    """What ``view`` shows: its model's layer for its image, tiled, and the image's class probabilities; with
    ``view.fixed``, the layer's colour scale over the test set (cached in ``statistics`` when given; the blog's
    standardised scale is fixed already: 0 to 255). A layer of several pages shows ``view.page`` (past the last:
    the last) of its maps in ``view.order``, or the page holding ``view.unit``.

    Raises:
        ExplorerError: no such model (or a broken one), no such layer, a malformed or unknown image, an unknown
            order.
    """
    if not view.model or not view.layer:
        raise InvalidInput("Choose a model and a layer.")
    loaded = store.get(view.model)
    info = loaded.engine.layer(view.layer)
    if names_user_image(view.image):
        image = image_ref(loaded, view.image, user_images, "your image")
    else:
        image = numbered_test_image(loaded, view.image)
    if view.order not in MAP_ORDERS:
        raise InvalidInput(f"Order {shown(view.order)} is not one of {', '.join(MAP_ORDERS)}.")
    per_page, page = layer_page_size(info), None
    if per_page is None:
        grid, grid_layout = loaded.engine.tiled(info.name, image.subject, scaled=view.scale)
    else:
        values = loaded.engine.activations(info.name, image.subject)
        # the order is the layer's own activations': standardised, every map's mean would be the same 128
        page = map_page(values, view.order, per_page, view.page, view.unit)
        grid, grid_layout = tile_page(standardize_and_clip(values) if view.scale else values, page)
    output_layer = loaded.model.layers and info.name == loaded.model.layers[-1].name
    colour_range = None
    if view.fixed:
        if view.scale:
            colour_range = (0.0, 255.0)
        else:
            colour_range = (statistics.layer_range(loaded, info.name) if statistics is not None
                            else compute_layer_range(loaded.engine, info.name))
    return ExploreResult(loaded, info, image, grid, grid_layout, loaded.engine.probabilities(image.subject),
                         list(loaded.class_names) if output_layer else None, colour_range, page)
