"""The finder's view: one model's test images filtered by true and predicted class, correctness and confidence,
in an order.

A :class:`FinderView` is the whole state of the page; it reads itself from a link's query
(:meth:`FinderView.from_query`) and writes the query that reopens it (:meth:`FinderView.to_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.finder import CORRECTNESS, SORT_ORDERS
from app.views.query import (
    LinkView,
    choice_value,
    fraction_range_value,
    name_value,
    number_value,
    query_of,
)

ANY_CONFIDENCE = (0.0, 1.0)


def _decimal(value: float) -> str:
    """The shortest text that reads back as ``value`` (``0.25``, ``1``, ``1e-05``)."""
    text = repr(float(value))
    return text.removesuffix(".0")


@dataclass(frozen=True)
class FinderView(LinkView):
    """What the finder shows, as its link says it.

    Attributes:
        model: the model's name (None: the page's default).
        true, predicted: the classes the images must have and be predicted as (None: any; classes the model
            lacks are dropped when the view is drawn).
        correct: one of :data:`app.core.finder.CORRECTNESS` ("all", "correct", "wrong").
        conf: the range the predicted class's probability must lie in, ``(low, high)`` within [0, 1].
        sort: one of :data:`app.core.finder.SORT_ORDERS`.
        prob: the class whose probability the ``probability-…`` orders sort by, and whose mean the ``likeness``
            order measures from (None: none).
        likeness_layer: the layer whose outputs the ``likeness`` order compares (None: the page's default); not
            ``layer``, which would become the place every other page opens at.
    """

    model: str | None = None
    true: int | None = None
    predicted: int | None = None
    correct: str = CORRECTNESS[0]
    conf: tuple[float, float] = ANY_CONFIDENCE
    sort: str = SORT_ORDERS[0]
    prob: int | None = None
    likeness_layer: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[FinderView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it falls back)."""
        notices: list[str] = []
        return cls(
            model=name_value(query, "model"),
            true=number_value(query, "true", "True class", notices, "any class"),
            predicted=number_value(query, "predicted", "Predicted class", notices, "any class"),
            correct=choice_value(query, "correct", CORRECTNESS),
            conf=fraction_range_value(query, "conf") or ANY_CONFIDENCE,
            sort=choice_value(query, "sort", SORT_ORDERS),
            prob=number_value(query, "prob", "Class", notices, "none"),
            likeness_layer=name_value(query, "likeness_layer"),
        ), notices

    def to_query(self) -> str:
        """``?model=…&true=4&predicted=9…``: the query that reopens this view (the defaults left out)."""
        low, high = self.conf
        return query_of({
            "model": self.model, "true": self.true, "predicted": self.predicted,
            "correct": self.correct if self.correct != CORRECTNESS[0] else None,
            "conf": f"{_decimal(low)},{_decimal(high)}" if self.conf != ANY_CONFIDENCE else None,
            "sort": self.sort if self.sort != SORT_ORDERS[0] else None, "prob": self.prob,
            "likeness_layer": self.likeness_layer if self.sort == "likeness" else None,
        })
