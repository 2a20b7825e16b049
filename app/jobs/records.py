"""A training job as every reader sees it: its record, its statuses, its errors, and its encoded probe records.

A job moves ``queued -> running -> succeeded | failed | stopped``; where the records live is a
:class:`~app.jobs.store.JobStore` engine's business.
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from app.core.errors import Conflict, NotFound, Unavailable

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "stopped")
STATUSES = ACTIVE + FINAL


class JobRunning(Conflict):
    """A job is already active; only one runs at a time."""

    def __init__(self, job: Job) -> None:
        super().__init__(
            f"a training job is already running (job {job.id}, model {job.model!r}, {job.status}"
            f"{f', started by {job.started_by}' if job.started_by else ''}); "
            "wait for it to finish or stop it"
        )
        self.job = job


class JobStoreUnavailable(Unavailable):
    """The job store cannot be read or written (a corrupt or full database, an unreachable Redis)."""


class JobNotFound(NotFound):
    """No job with that id."""


class JobNotActive(Conflict):
    """The job has already finished, so it cannot be stopped."""


@dataclass
class Job:
    """One training job as every reader sees it.

    Attributes:
        id: a random hex id.
        status: one of :data:`STATUSES`.
        config: the validated training configuration (plain JSON).
        model: the name the model will be (or was) saved under.
        engine: which runner started it (``embedded``, ``celery``, ``cli``).
        created, started, finished, heartbeat: Unix times (None until they happen).
        pid, host: the training process, once it runs.
        epochs_total, batches_per_epoch: the run's size, once training begins.
        epoch, batch: the last batch done (both count from 1; 0 before the first batch).
        eta_seconds: estimated time until the last batch, from the pace so far.
        stop_requested, save_partial: a user asked to stop (and to keep the partial model).
        error: why it failed.
        info: extras for viewers: class names, data sizes, the probe image's pixels and label.
        saved: whether a model was written to the model store.
        probe_request: ``{"image", "layer"}`` a viewer asked to record from the next epoch on (during the run).
        started_by: who started it: the logged-in user of the page or API, the OS user of the CLI (None: unknown,
            e.g. an instance without login).
    """

    id: str
    status: str
    config: dict[str, Any]
    model: str
    engine: str = "embedded"
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    heartbeat: float | None = None
    pid: int | None = None
    host: str | None = None
    epochs_total: int = 0
    batches_per_epoch: int = 0
    epoch: int = 0
    batch: int = 0
    eta_seconds: float | None = None
    stop_requested: bool = False
    save_partial: bool = False
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    saved: bool = False
    probe_request: dict[str, Any] = field(default_factory=dict)
    started_by: str | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE

    @property
    def batches_done(self) -> int:
        """Batches finished over the whole run."""
        return max(self.epoch - 1, 0) * self.batches_per_epoch + self.batch if self.epoch else 0

    @property
    def batches_total(self) -> int:
        """Batches of the whole run (0 until training begins)."""
        return self.epochs_total * self.batches_per_epoch

    @property
    def fraction(self) -> float:
        """Share of the run done, 0..1 (1 once it succeeded)."""
        if self.status == "succeeded":
            return 1.0
        return self.batches_done / self.batches_total if self.batches_total else 0.0

    @property
    def elapsed_seconds(self) -> float | None:
        """Seconds since the run started (until it finished)."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the API, with the derived progress fields."""
        data = asdict(self)
        data.update(
            active=self.active,
            batches_done=self.batches_done,
            batches_total=self.batches_total,
            fraction=round(self.fraction, 4),
            elapsed_seconds=None if self.elapsed_seconds is None else round(self.elapsed_seconds, 2),
        )
        return data


JOB_FIELDS = tuple(f.name for f in fields(Job))
JSON_FIELDS = ("config", "info", "probe_request")
BOOL_FIELDS = ("stop_requested", "save_partial", "saved")


def new_job_id() -> str:
    """A random job id (hex, 12 characters)."""
    return uuid.uuid4().hex[:12]


def encode_probe(layer: str, image: int | str, activations: np.ndarray, probabilities: np.ndarray) -> bytes:
    """One probe record as an ``.npz`` byte string (no pickles, so reading it back is safe).

    Activations are kept as float16: half the size (a 26x26x512 layer is 0.7 MB per epoch instead of 1.4 MB) and
    far more precision than a colour scale shows.
    """
    buffer = io.BytesIO()
    np.savez(
        buffer,
        layer=np.array(layer),
        image=np.array(image),
        activations=np.asarray(activations, dtype=np.float16),
        probabilities=np.asarray(probabilities, dtype=np.float32),
    )
    return buffer.getvalue()


def decode_probe(data: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_probe`: ``{"layer", "image", "activations", "probabilities"}``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {
            "layer": str(arrays["layer"]),
            # a test image's index, or a user image's u:<id> (a text array: no pickle either way)
            "image": str(arrays["image"]) if arrays["image"].dtype.kind == "U" else int(arrays["image"]),
            "activations": arrays["activations"].astype(np.float32),
            "probabilities": arrays["probabilities"],
        }
