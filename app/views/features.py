"""The Features page's view: what each unit of a layer responds to most (its optimal input), and where the model
looks in one test image (an attribution method, for a class, with Grad-CAM's layer).

A :class:`FeaturesView` is the whole state of the page; it reads itself from a link's query
(:meth:`FeaturesView.from_query`) and writes the query that reopens it (:meth:`FeaturesView.to_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.attribution import METHODS
from app.views.query import LinkView, choice_value, name_value, number_value, query_of


@dataclass(frozen=True)
class FeaturesView(LinkView):
    """What the Features page shows, as its link says it.

    Attributes:
        model, layer: names (None: the page's defaults); checked against the store when the view is drawn.
        image: the test image of the attribution.
        method: one of :data:`app.core.attribution.METHODS`.
        target: the class explained (None: the predicted class).
        cam: Grad-CAM's layer (None: the page's default, the last map layer).
    """

    model: str | None = None
    layer: str | None = None
    image: int = 0
    method: str = METHODS[0]
    target: int | None = None
    cam: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[FeaturesView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it falls back)."""
        notices: list[str] = []
        image = number_value(query, "image", "Image", notices, "showing 0")
        return cls(
            model=name_value(query, "model"), layer=name_value(query, "layer"), image=0 if image is None else image,
            method=choice_value(query, "method", METHODS),
            target=number_value(query, "target", "Class", notices, "explaining the predicted class"),
            cam=name_value(query, "cam"),
        ), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&image=…&method=…``: the query that reopens this view."""
        return query_of({"model": self.model, "layer": self.layer, "image": self.image, "method": self.method,
                         "target": self.target, "cam": self.cam})
