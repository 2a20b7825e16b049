"""The core's error vocabulary: what went wrong, in words a user can act on, never an HTTP status.

Five kinds of failure; the API maps them to status codes in one place (:mod:`app.api`) and the pages show them with one
alert helper (:mod:`app.ui`):

- :class:`NotFound`: the thing asked for does not exist (a model, a layer, an image, a job).
- :class:`InvalidInput`: the request itself is wrong (a malformed name, a number out of range, a bad config).
- :class:`Conflict`: the request is well formed but the current state refuses it (a broken model, a name already
  taken, a job already running or already ended).
- :class:`TooLarge`: a file or request exceeds a size limit (an upload, an archive's contents).
- :class:`Unavailable`: a service the request needs cannot answer now (the job store's database, disk or Redis).

And one that is not a failure: :class:`StillComputing`, a result that a background job is computing now.
"""

from __future__ import annotations

from typing import Any


class ExplorerError(Exception):
    """Base of every error the core raises on purpose; its message is written for the user."""

    def details(self) -> dict[str, Any]:
        """Extra structured fields for a machine reader (e.g. a list of problems); none by default."""
        return {}


class NotFound(ExplorerError, LookupError):
    """The model, layer, image, job or route asked for does not exist."""


class InvalidInput(ExplorerError, ValueError):
    """A parameter, a configuration or a file that is malformed or out of range."""


class TooLarge(InvalidInput):
    """A file or request larger than a limit allows; the message names the limit and its setting."""


class Conflict(ExplorerError):
    """A valid request the current state refuses: a broken model, a taken name, a job running or ended."""


class Unavailable(ExplorerError):
    """A service the request needs cannot answer now (the job store's database or disk, Redis); try again later."""


class StillComputing(ExplorerError):
    """The result asked for is being computed by a background job (a pass over a large test set): ask again.

    Args:
        message: what is computed and how far it is, in words.
        progress: the job's progress as plain JSON (status, done, total, fraction, stage, seconds_left).
    """

    def __init__(self, message: str, progress: dict[str, Any]) -> None:
        super().__init__(message)
        self.progress = progress

    def details(self) -> dict[str, Any]:
        """The job's progress, for a machine reader to poll."""
        return dict(self.progress)
