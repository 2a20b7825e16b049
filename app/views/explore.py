"""The explorer's view: one model, one layer, one image (a test image or the user's own), drawn in a colormap.

An :class:`ExploreView` is the whole state of the page; it reads itself from a link's query
(:meth:`ExploreView.from_query`) and writes the query that reopens it (:meth:`ExploreView.to_query`). The page and
the API ask :func:`explore` for what the view shows: the layer's grid, the image, the class probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from app.core.activations import ImageOutOfRange, LayerInfo
from app.core.errors import InvalidInput
from app.core.grid import COLORMAPS, GridLayout
from app.core.limits import parse_int
from app.core.store import LoadedModel, ModelStore
from app.core.user_images import UserImageStore, names_user_image
from app.views.images import ImageRef, image_ref, of_subject
from app.views.query import LinkView, choice_value, flag_value, image_value, name_value, number_value, query_of


@dataclass(frozen=True)
class ExploreView(LinkView):
    """What the explorer shows, as its link says it.

    Attributes:
        model, layer: names (None: the page's defaults); checked against the store when the view is drawn.
        image: a test-image number, or a user image's id ``u:<id>``.
        cmap: one of :data:`app.core.grid.COLORMAPS`.
        reverse: the colormap reversed.
        scale: the blog's standardise-and-clip scaling per map.
        unit: the map or node chosen on the grid (None: none).
    """

    model: str | None = None
    layer: str | None = None
    image: int | str = 0
    cmap: str = COLORMAPS[0]
    reverse: bool = False
    scale: bool = False
    unit: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[ExploreView, list[str]]:
        """The view a link's query asks for (values as text, or lists of text as Dash passes repeated ones), and a
        sentence per value that could not be read; such a value falls back to its default."""
        notices: list[str] = []
        image = image_value(query, "image", notices, "showing 0")
        unit = number_value(query, "unit", "Unit", notices, "no unit chosen")
        return cls(model=name_value(query, "model"), layer=name_value(query, "layer"),
                   image=0 if image is None else image, cmap=choice_value(query, "cmap", COLORMAPS),
                   reverse=flag_value(query, "reverse"), scale=flag_value(query, "scale"), unit=unit), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&image=…``: the query that reopens this view (``image=0`` kept, the switches only
        when on)."""
        return query_of({"model": self.model, "layer": self.layer, "image": self.image, "cmap": self.cmap,
                         "reverse": self.reverse, "scale": self.scale, "unit": self.unit})

    def without_unit(self) -> ExploreView:
        """The same view with no unit chosen (the page adds the chosen unit to its URL on its own)."""
        return replace(self, unit=None)


@dataclass(frozen=True, eq=False)
class ExploreResult:
    """What an :class:`ExploreView` shows, as plain data.

    Attributes:
        loaded: the model. layer: the layer shown. image: the image shown.
        grid: the layer's output tiled [rows, cols] (NaN past the last unit), standardised if the view says so.
        grid_layout: where the units sit in ``grid``.
        probabilities: the class probabilities of the image.
        unit_names: the class names when the layer is the output layer (its nodes are the classes), else None.
    """

    loaded: LoadedModel
    layer: LayerInfo
    image: ImageRef
    grid: np.ndarray
    grid_layout: GridLayout
    probabilities: np.ndarray
    unit_names: list[str] | None


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


def explore(store: ModelStore, user_images: UserImageStore, view: ExploreView) -> ExploreResult:
    """What ``view`` shows: its model's layer for its image, tiled, and the image's class probabilities.

    Raises:
        ExplorerError: no such model (or a broken one), no such layer, a malformed or unknown image.
    """
    if not view.model or not view.layer:
        raise InvalidInput("Choose a model and a layer.")
    loaded = store.get(view.model)
    info = loaded.engine.layer(view.layer)
    if names_user_image(view.image):
        image = image_ref(loaded, view.image, user_images, "your image")
    else:
        image = numbered_test_image(loaded, view.image)
    grid, grid_layout = loaded.engine.tiled(info.name, image.subject, scaled=view.scale)
    output_layer = loaded.model.layers and info.name == loaded.model.layers[-1].name
    return ExploreResult(loaded, info, image, grid, grid_layout, loaded.engine.probabilities(image.subject),
                         list(loaded.class_names) if output_layer else None)
