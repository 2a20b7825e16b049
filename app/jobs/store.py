"""The job store: the one place a training run's state lives, shared by every web worker and the training process.

:class:`JobStore` holds the rules (one active job at a time, stale-job reaping, stop and probe requests); each
engine supplies only the storage primitives:

- :class:`~app.jobs.sqlite_store.SqliteJobStore` (embedded default): one SQLite file in ``STATE_DIR`` in WAL mode,
  so readers (every gunicorn worker polling the page) never block the writer (the training process).
- :class:`~app.jobs.redis_store.RedisJobStore` (scale-out): the same records in Redis, used with the Celery runner
  when ``REDIS_URL`` is set, so workers on other machines report to the same place.

At most one job is active (queued or running) per store: :meth:`JobStore.create` refuses a second with
:class:`~app.jobs.records.JobRunning`. A job whose worker died stops blocking: a running job without a heartbeat for
``stale_after`` seconds, or a queued job nobody picked up within ``queue_timeout`` seconds, is marked failed the next
time anyone reads it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from app.jobs.records import (
    ACTIVE,
    FINAL,
    Job,
    JobNotActive,
    JobNotFound,
    JobRunning,
    decode_probe,
    encode_probe,
    new_job_id,
)


class JobStore(ABC):
    """Where jobs, their per-epoch metrics and probe records live. Engines implement the storage primitives;
    the rules (one active job, stale detection) are here, shared.

    Args:
        stale_after: seconds without a heartbeat after which a running job counts as dead.
        queue_timeout: seconds a queued job may wait for a worker before it counts as failed.
    """

    url = ""  # how another process opens the same store (see :func:`open_store`)

    def __init__(self, stale_after: float = 30.0, queue_timeout: float = 120.0) -> None:
        self.stale_after = stale_after
        self.queue_timeout = queue_timeout

    # ---- engine primitives -------------------------------------------------------------------------------------
    @abstractmethod
    def _insert_if_idle(self, job: Job) -> Job | None:
        """Atomically insert ``job`` unless an active job exists; return that active job instead."""

    @abstractmethod
    def _load(self, job_id: str) -> Job | None:
        """The stored job, as written (no stale check)."""

    @abstractmethod
    def _ids(self, limit: int) -> list[str]:
        """The ids of the newest ``limit`` jobs, newest first."""

    @abstractmethod
    def update(self, job_id: str, **values: Any) -> None:
        """Set fields of a job (names of :class:`Job` fields)."""

    @abstractmethod
    def _update_if(self, job_id: str, statuses: tuple[str, ...], values: dict[str, Any]) -> bool:
        """Atomically set ``values`` if the job's status is one of ``statuses``; True if it was."""

    @abstractmethod
    def add_epoch(self, job_id: str, metrics: dict[str, float]) -> None:
        """Append one epoch's metrics (``metrics["epoch"]`` counts from 1)."""

    @abstractmethod
    def epochs(self, job_id: str) -> list[dict[str, float]]:
        """Every recorded epoch's metrics, in epoch order."""

    @abstractmethod
    def _put_probe(self, job_id: str, epoch: int, data: bytes) -> None:
        """Store an encoded probe record."""

    @abstractmethod
    def _get_probe(self, job_id: str, epoch: int) -> bytes | None:
        """An encoded probe record, or None."""

    @abstractmethod
    def probe_epochs(self, job_id: str) -> list[int]:
        """Epochs with a probe record, ascending."""

    # ---- shared rules --------------------------------------------------------------------------------------------
    def create(self, config: dict[str, Any], engine: str = "embedded", started_by: str | None = None) -> Job:
        """Record a new queued job for ``config`` (a validated config dict), started by user ``started_by``.

        Raises:
            JobRunning: another job is queued or running (dead ones are reaped first).
        """
        for _attempt in range(3):
            job = Job(new_job_id(), "queued", config, str(config.get("name", "")), engine, created=time.time(),
                      started_by=started_by)
            active = self._insert_if_idle(job)
            if active is None:
                return job
            if not self._reap_if_stale(active):
                raise JobRunning(active)
        raise JobRunning(active)

    def get(self, job_id: str) -> Job:
        """The job ``job_id``, marked failed first if its worker is gone.

        Raises:
            JobNotFound: no such job.
        """
        job = self._load(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        if self._reap_if_stale(job):
            job = self._load(job_id) or job
        return job

    def list(self, limit: int = 20) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        jobs = []
        for job_id in self._ids(limit):
            with contextlib.suppress(JobNotFound):
                jobs.append(self.get(job_id))
        return jobs

    def active(self) -> Job | None:
        """The queued or running job, if any."""
        return next((job for job in self.list(5) if job.active), None)

    def current(self) -> Job | None:
        """What a viewer should see: the active job, else the newest one, else None."""
        jobs = self.list(5)
        return next((job for job in jobs if job.active), jobs[0] if jobs else None)

    def claim(self, job_id: str, pid: int, host: str | None = None) -> bool:
        """A worker takes the queued job (False if it is no longer queued, e.g. stopped or reaped meanwhile)."""
        now = time.time()
        host = host or socket.gethostname()
        values = {"status": "running", "started": now, "heartbeat": now, "pid": pid, "host": host}
        return self._update_if(job_id, ("queued",), values)

    def finish(self, job_id: str, status: str, error: str | None = None, saved: bool = False) -> bool:
        """Record the end of a job, unless it already ended (e.g. reaped as dead); True if this call ended it."""
        if status not in FINAL:
            raise ValueError(f"not a final status: {status!r}")
        values = {"status": status, "finished": time.time(), "error": error, "saved": saved, "eta_seconds": None}
        return self._update_if(job_id, ACTIVE, values)

    def request_stop(self, job_id: str, save_partial: bool = False) -> Job:
        """Ask the job's worker to stop at its next batch (and whether to save the partial model).

        A later request may add intent, never take it back: once anyone asked to keep the partial model, a second
        stop without it (a double click, another viewer) still keeps it. Only True is ever written, so two
        requests at once cannot undo each other either.

        Raises:
            JobNotFound, JobNotActive.
        """
        job = self.get(job_id)
        if not job.active:
            raise JobNotActive(f"job {job_id} has already {job.status}")
        # A job no worker has taken yet simply ends; a running one is told through the flag its worker polls.
        values = {"status": "stopped", "finished": time.time(), "stop_requested": True}
        if not self._update_if(job_id, ("queued",), values):
            self.update(job_id, stop_requested=True, **({"save_partial": True} if save_partial else {}))
        return self.get(job_id)

    def request_probe(self, job_id: str, image: int | str, layer: str) -> Job:
        """Ask the running job to record test image ``image`` (or user image ``u:<id>``) at ``layer`` from its next
        epoch end on.

        Raises:
            JobNotFound, JobNotActive.
        """
        job = self.get(job_id)
        if not job.active:
            raise JobNotActive(f"job {job_id} has already {job.status}")
        self.update(job_id, probe_request={"image": image if isinstance(image, str) else int(image),
                                              "layer": str(layer), "at": time.time()})
        return self.get(job_id)

    def add_probe(
        self, job_id: str, epoch: int, layer: str, image: int | str, activations: np.ndarray,
        probabilities: np.ndarray,
    ) -> None:
        """Record the probe image's layer output and class probabilities after ``epoch``."""
        self._put_probe(job_id, epoch, encode_probe(layer, image, activations, probabilities))

    def probe(self, job_id: str, epoch: int) -> dict[str, Any] | None:
        """The probe record of ``epoch`` (see :func:`decode_probe`), or None."""
        data = self._get_probe(job_id, epoch)
        return None if data is None else decode_probe(data)

    def stale_reason(self, job: Job, now: float | None = None) -> str | None:
        """Why ``job`` counts as dead, or None if it is fine (or already final)."""
        now = time.time() if now is None else now
        if job.status == "running" and now - (job.heartbeat or job.created) > self.stale_after:
            return f"the training process stopped responding (no heartbeat for {self.stale_after:.0f} s)"
        if job.status == "queued" and now - job.created > self.queue_timeout:
            return f"no worker picked the job up within {self.queue_timeout:.0f} s"
        return None

    def _reap_if_stale(self, job: Job) -> bool:
        reason = self.stale_reason(job)
        return bool(reason) and self.finish(job.id, "failed", error=reason)
