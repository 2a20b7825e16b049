"""The Models page's view: the model list, and the compatibility report of one model (``?model=``), with a word
that it was just added (``?added=1``, where the upload form sends the browser).

A :class:`ModelsView` reads itself from a link's query (:meth:`ModelsView.from_query`) and writes the query that
reopens it (:meth:`ModelsView.to_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.store import ModelStore
from app.jobs.statistics import StatisticsJobs
from app.views.query import LinkView, flag_value, name_value, query_of


@dataclass(frozen=True)
class ModelsView(LinkView):
    """What the Models page shows, as its link says it.

    Attributes:
        model: the model whose report is shown (None: none; checked against the store when drawn).
        added: the model was just added (the report says so).
    """

    model: str | None = None
    added: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[ModelsView, list[str]]:
        """The view a link's query asks for (nothing in it can be malformed: no notices)."""
        return cls(model=name_value(query, "model"), added=flag_value(query, "added")), []

    def to_query(self) -> str:
        """``?model=…`` (and ``&added=1``): the query that reopens this view."""
        return query_of({"model": self.model, "added": self.added})


def delete_model(store: ModelStore, statistics: StatisticsJobs, name: str) -> None:
    """Delete model ``name`` and the statistics stored for it (an editor's write, checked by the caller).

    Raises:
        InvalidName, ModelNotFound.
    """
    store.delete(name)
    statistics.forget(name)
