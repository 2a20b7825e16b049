"""The training page's view: which job it shows (the current one, or one pinned by its id) and which image the
form's next run watches learn.

A :class:`TrainView` reads itself from a link's query (:meth:`TrainView.from_query`) and writes the query that
reopens it (:meth:`TrainView.to_query`): the jobs table's links pin a job, Explore's "watch it learn" fills the
watched image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.views.query import LinkView, image_value, query_of, text_value

# What a job id looks like (the job stores make them of letters, digits, "-" and "_").
JOB_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class TrainView(LinkView):
    """What the training page shows, as its link says it.

    Attributes:
        job: the job shown (None: the current one, followed as runs come and go).
        probe: the image the form's run watches: a test-image number or a user image's id (None: the form's
            default).
    """

    job: str | None = None
    probe: int | str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[TrainView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it is left out)."""
        notices: list[str] = []
        job = text_value(query, "job")
        if job and not JOB_ID.fullmatch(job):
            notices.append("The link's job is not a job id; showing the current job.")
            job = None
        return cls(job=job or None, probe=image_value(query, "probe", notices, "the form watches image 0")), notices

    def to_query(self) -> str:
        """``?job=…`` or ``?probe=…``: the query that reopens this view."""
        return query_of({"job": self.job, "probe": self.probe})
