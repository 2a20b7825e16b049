"""Compare's view: several images of one model side by side at one layer, on one colour scale, and the difference
of two of them (B − A).

A :class:`CompareView` is the whole state of the page; it reads itself from a link's query
(:meth:`CompareView.from_query`) and writes the query that reopens it (:meth:`CompareView.to_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.attribution import METHODS
from app.core.grid import COLORMAPS
from app.views.query import (
    LinkView,
    choice_value,
    image_value,
    name_value,
    number_value,
    query_of,
    text_value,
)

DEFAULT_IMAGES = "0,1,2"
# The images field as typed: 8 ids of the user's images (22 characters each) with commas take ~190 characters.
MAX_IMAGES_TEXT = 400


@dataclass(frozen=True)
class CompareView(LinkView):
    """What Compare shows, as its link says it.

    Attributes:
        model, layer: names (None: the page's defaults); checked against the store when the view is drawn.
        images: the images field as typed: test-image numbers and user images' ids, comma separated (read by
            :func:`app.core.finder.parse_image_refs` when the view is drawn; None: left out of the link, Compare's
            default images).
        cmap: one of :data:`app.core.grid.COLORMAPS` (None: left out of the link, the first).
        a, b: the images of the difference B − A (None: the first two shown).
        unit: the map or node chosen on a grid (None: none).
        method: "where the model looks" over every image: one of :data:`app.core.attribution.METHODS`, or ""
            (off).
        target: the class that method explains (None: each image's predicted class).
    """

    model: str | None = None
    layer: str | None = None
    images: str | None = DEFAULT_IMAGES
    cmap: str | None = COLORMAPS[0]
    a: int | str | None = None
    b: int | str | None = None
    unit: int | None = None
    method: str = ""
    target: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[CompareView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it falls back)."""
        notices: list[str] = []
        images = text_value(query, "images")
        return cls(
            model=name_value(query, "model"), layer=name_value(query, "layer"),
            images=images[:MAX_IMAGES_TEXT] if images else DEFAULT_IMAGES,
            cmap=choice_value(query, "cmap", COLORMAPS),
            a=image_value(query, "a", notices, "the first image is A"),
            b=image_value(query, "b", notices, "the second image is B"),
            unit=number_value(query, "unit", "Unit", notices, "no unit chosen"),
            method=choice_value(query, "method", ("", *METHODS)),
            target=number_value(query, "target", "Class", notices, "explaining the predicted class"),
        ), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&images=3,12,u:…``: the query that reopens this view."""
        return query_of({"model": self.model, "layer": self.layer, "images": self.images, "cmap": self.cmap,
                         "a": self.a, "b": self.b, "unit": self.unit, "method": self.method or None,
                         "target": self.target})
