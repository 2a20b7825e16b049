"""The Classes page's view: what separates two classes at one layer (their mean grids, B − A, the units ranked),
and the test image its link to "Why this prediction?" (the MLP view, :mod:`app.views.why`) opens with the two
classes.

A :class:`ClassesView` is the whole state of the page; it reads itself from a link's query
(:meth:`ClassesView.from_query`) and writes the query that reopens it (:meth:`ClassesView.to_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.grid import COLORMAPS
from app.views.query import LinkView, choice_value, name_value, number_value, query_of

# The blog's pair: 4s against 9s (kept when the model has those classes).
DEFAULT_CLASSES = (4, 9)


@dataclass(frozen=True)
class ClassesView(LinkView):
    """What the Classes page shows, as its link says it.

    Attributes:
        model, layer: names (None: the page's defaults); checked against the store when the view is drawn.
        a, b: the two classes compared (their indices; None: left out of the link, :data:`DEFAULT_CLASSES`).
        cmap: one of :data:`app.core.grid.COLORMAPS` (None: left out of the link, the first).
        mlp: the vector layer of the MLP view, which had its place on this page before it had its own (None: not
            named). A link that names it is an old link to the MLP view: the page offers to open that view.
        image: the test image the link to "Why this prediction?" names (None: not named, image 0).
        unit: the map or node chosen on a grid or in the ranking (None: none).
    """

    model: str | None = None
    layer: str | None = None
    a: int | None = DEFAULT_CLASSES[0]
    b: int | None = DEFAULT_CLASSES[1]
    cmap: str | None = COLORMAPS[0]
    mlp: str | None = None
    image: int | None = None
    unit: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[ClassesView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it falls back)."""
        notices: list[str] = []
        a = number_value(query, "a", "Class", notices, f"comparing class {DEFAULT_CLASSES[0]}")
        b = number_value(query, "b", "Class", notices, f"comparing class {DEFAULT_CLASSES[1]}")
        image = number_value(query, "image", "Image", notices, "showing 0")
        return cls(
            model=name_value(query, "model"), layer=name_value(query, "layer"),
            a=DEFAULT_CLASSES[0] if a is None else a, b=DEFAULT_CLASSES[1] if b is None else b,
            cmap=choice_value(query, "cmap", COLORMAPS), mlp=name_value(query, "mlp"),
            image=image,
            unit=number_value(query, "unit", "Unit", notices, "no unit chosen"),
        ), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&a=4&b=9…``: the query that reopens this view."""
        return query_of({"model": self.model, "layer": self.layer, "a": self.a, "b": self.b, "cmap": self.cmap,
                         "mlp": self.mlp, "image": self.image, "unit": self.unit})
