"""The job store: the one place a training run's state lives, shared by every web worker and the training process.

Two engines behind :class:`JobStore`:

- :class:`SqliteJobStore` (embedded default): one SQLite file in ``STATE_DIR`` in WAL mode, so readers (every
  gunicorn worker polling the page) never block the writer (the training process) and nothing needs starting.
- :class:`RedisJobStore` (scale-out): the same records in Redis, used with the Celery runner when ``REDIS_URL`` is
  set, so workers on other machines report to the same place.

A job moves ``queued -> running -> succeeded | failed | stopped``. At most one job is active (queued or running)
per store: :meth:`JobStore.create` refuses a second with :class:`JobRunning`. A job whose worker died stops
blocking: a running job without a heartbeat for ``stale_after`` seconds, or a queued job nobody picked up within
``queue_timeout`` seconds, is marked failed the next time anyone reads it.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "stopped")
STATUSES = ACTIVE + FINAL


class JobStoreError(Exception):
    """Base class of job-store errors; ``status`` is the HTTP status an API answers with."""

    status = 400


class JobRunning(JobStoreError):
    """A job is already active; only one runs at a time."""

    status = 409

    def __init__(self, job: Job) -> None:
        super().__init__(
            f"a training job is already running (job {job.id}, model {job.model!r}, {job.status}); "
            "wait for it to finish or stop it"
        )
        self.job = job


class JobNotFound(JobStoreError):
    """No job with that id."""

    status = 404


class JobNotActive(JobStoreError):
    """The job has already finished, so it cannot be stopped."""

    status = 409


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
_JSON_FIELDS = ("config", "info", "probe_request")
_BOOL_FIELDS = ("stop_requested", "save_partial", "saved")


def new_job_id() -> str:
    """A random job id (hex, 12 characters)."""
    return uuid.uuid4().hex[:12]


def encode_probe(layer: str, image: int, activations: np.ndarray, probabilities: np.ndarray) -> bytes:
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
            "image": int(arrays["image"]),
            "activations": arrays["activations"].astype(np.float32),
            "probabilities": arrays["probabilities"],
        }


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
    def create(self, config: dict[str, Any], engine: str = "embedded") -> Job:
        """Record a new queued job for ``config`` (a validated config dict).

        Raises:
            JobRunning: another job is queued or running (dead ones are reaped first).
        """
        for _attempt in range(3):
            job = Job(new_job_id(), "queued", config, str(config.get("name", "")), engine, created=time.time())
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

        Raises:
            JobNotFound, JobNotActive.
        """
        job = self.get(job_id)
        if not job.active:
            raise JobNotActive(f"job {job_id} has already {job.status}")
        # A job no worker has taken yet simply ends; a running one is told through the flag its worker polls.
        values = {"status": "stopped", "finished": time.time(), "stop_requested": True}
        if not self._update_if(job_id, ("queued",), values):
            self.update(job_id, stop_requested=True, save_partial=bool(save_partial))
        return self.get(job_id)

    def request_probe(self, job_id: str, image: int, layer: str) -> Job:
        """Ask the running job to record test image ``image`` at ``layer`` from its next epoch end on.

        Raises:
            JobNotFound, JobNotActive.
        """
        job = self.get(job_id)
        if not job.active:
            raise JobNotActive(f"job {job_id} has already {job.status}")
        self.update(job_id, probe_request={"image": int(image), "layer": str(layer), "at": time.time()})
        return self.get(job_id)

    def add_probe(
        self, job_id: str, epoch: int, layer: str, image: int, activations: np.ndarray, probabilities: np.ndarray
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


def _encode_value(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return json.dumps(value)
    if name in _BOOL_FIELDS:
        return int(bool(value))
    return value


def _decode_row(row: dict[str, Any]) -> Job:
    values = dict(row)
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name]) if values.get(name) else {}
    for name in _BOOL_FIELDS:
        values[name] = bool(values.get(name))
    # NULL in a column added by an upgrade means "not recorded": fall back to the field's default
    return Job(**{name: values[name] for name in JOB_FIELDS if values.get(name) is not None or name in _NULLABLE})


_NULLABLE = {f.name for f in fields(Job) if f.default is None}
_SQL_TYPES = {
    "id": "TEXT PRIMARY KEY",
    "created": "REAL NOT NULL",
    "started": "REAL",
    "finished": "REAL",
    "heartbeat": "REAL",
    "eta_seconds": "REAL",
    "pid": "INTEGER",
    "epochs_total": "INTEGER",
    "batches_per_epoch": "INTEGER",
    "epoch": "INTEGER",
    "batch": "INTEGER",
    "stop_requested": "INTEGER",
    "save_partial": "INTEGER",
    "saved": "INTEGER",
}


class SqliteJobStore(JobStore):
    """Jobs in one SQLite file (WAL), shared by every process on the machine; nothing to start.

    Args:
        path: the database file (created with its folder).
    """

    def __init__(self, path: Path, stale_after: float = 30.0, queue_timeout: float = 120.0) -> None:
        super().__init__(stale_after, queue_timeout)
        self.path = Path(path).resolve()
        self.url = f"sqlite:{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        columns = ", ".join(f"{name} {_SQL_TYPES.get(name, 'TEXT')}" for name in JOB_FIELDS)
        with self._connect() as db:
            # WAL: readers (page polls in every web worker) never wait for the writer (the training process).
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"CREATE TABLE IF NOT EXISTS jobs ({columns})")
            # a store written by an older version lacks newer fields: add them instead of failing on every read
            present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name in JOB_FIELDS:
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {_SQL_TYPES.get(name, 'TEXT')}")
            db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS epochs "
                "(job_id TEXT, epoch INTEGER, metrics TEXT, PRIMARY KEY (job_id, epoch))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS probes (job_id TEXT, epoch INTEGER, data BLOB, PRIMARY KEY (job_id, epoch))"
            )

    @contextlib.contextmanager
    def _connect(self):
        # A connection per operation: cheap for SQLite, safe across threads and processes, and never inherited
        # half-used by a child process.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    def _insert_if_idle(self, job: Job) -> Job | None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock first so two starts cannot both see "idle"
            try:
                row = db.execute(
                    "SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY created DESC LIMIT 1", ACTIVE
                ).fetchone()
                if row is not None:
                    return _decode_row(dict(row))
                values = {name: _encode_value(name, getattr(job, name)) for name in JOB_FIELDS}
                db.execute(
                    f"INSERT INTO jobs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                    tuple(values.values()),
                )
                return None
            finally:
                db.execute("COMMIT")

    def _load(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _decode_row(dict(row))

    def _ids(self, limit: int) -> list[str]:
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT id FROM jobs ORDER BY created DESC LIMIT ?", (limit,))]

    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - set(JOB_FIELDS)
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._connect() as db:
            db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?",
                (*(_encode_value(name, value) for name, value in values.items()), job_id),
            )

    def _update_if(self, job_id: str, statuses: tuple[str, ...], values: dict[str, Any]) -> bool:
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._connect() as db:
            cursor = db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND status IN ({', '.join('?' * len(statuses))})",
                (*(_encode_value(name, value) for name, value in values.items()), job_id, *statuses),
            )
            return cursor.rowcount == 1

    def add_epoch(self, job_id: str, metrics: dict[str, float]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs (job_id, epoch, metrics) VALUES (?, ?, ?)",
                (job_id, int(metrics["epoch"]), json.dumps(metrics)),
            )

    def epochs(self, job_id: str) -> list[dict[str, float]]:
        with self._connect() as db:
            rows = db.execute("SELECT metrics FROM epochs WHERE job_id = ? ORDER BY epoch", (job_id,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def _put_probe(self, job_id: str, epoch: int, data: bytes) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO probes (job_id, epoch, data) VALUES (?, ?, ?)", (job_id, epoch, data))

    def _get_probe(self, job_id: str, epoch: int) -> bytes | None:
        with self._connect() as db:
            row = db.execute("SELECT data FROM probes WHERE job_id = ? AND epoch = ?", (job_id, epoch)).fetchone()
        return None if row is None else bytes(row[0])

    def probe_epochs(self, job_id: str) -> list[int]:
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT epoch FROM probes WHERE job_id = ? ORDER BY epoch", (job_id,))]


class RedisJobStore(JobStore):
    """Jobs in Redis, for the Celery engine: web workers and training workers may sit on different machines.

    Keys (under ``prefix``): ``jobs`` (sorted set of ids by creation time), ``active`` (the active job's id),
    ``job:<id>`` (hash of JSON-encoded fields), ``job:<id>:epochs`` (hash epoch -> metrics JSON),
    ``job:<id>:probes`` (hash epoch -> encoded probe).

    Args:
        url: the Redis URL (``redis://host:port/db``).
        prefix: key prefix, so several instances can share one Redis.
    """

    def __init__(self, url: str, prefix: str = "cae", stale_after: float = 30.0, queue_timeout: float = 120.0) -> None:
        super().__init__(stale_after, queue_timeout)
        import redis

        self.url = url if prefix == "cae" else f"{url}#{prefix}"
        self.prefix = prefix
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _insert_if_idle(self, job: Job) -> Job | None:
        import redis

        active_key = self._key("active")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(active_key)  # the transaction fails if another start claims "active" meanwhile
                    current_id = pipe.get(active_key)
                    if current_id is not None:
                        current = self._load(current_id.decode())
                        if current is not None and current.active:
                            pipe.unwatch()
                            return current
                    pipe.multi()
                    pipe.set(active_key, job.id)
                    pipe.hset(self._key("job", job.id), mapping=self._encode(asdict(job)))
                    pipe.zadd(self._key("jobs"), {job.id: job.created})
                    pipe.execute()
                    return None
                except redis.WatchError:
                    continue

    @staticmethod
    def _encode(values: dict[str, Any]) -> dict[str, str]:
        return {name: json.dumps(value) for name, value in values.items()}

    def _load(self, job_id: str) -> Job | None:
        raw = self.redis.hgetall(self._key("job", job_id))
        if not raw:
            return None
        values = {key.decode(): json.loads(value) for key, value in raw.items()}
        return Job(**{name: values[name] for name in JOB_FIELDS if name in values})

    def _ids(self, limit: int) -> list[str]:
        return [raw.decode() for raw in self.redis.zrevrange(self._key("jobs"), 0, limit - 1)]

    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - set(JOB_FIELDS)
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        self.redis.hset(self._key("job", job_id), mapping=self._encode(values))

    def _update_if(self, job_id: str, statuses: tuple[str, ...], values: dict[str, Any]) -> bool:
        import redis

        key = self._key("job", job_id)
        active_key = self._key("active")
        ends = values.get("status") in FINAL
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key, active_key)
                    status = pipe.hget(key, "status")
                    if status is None or json.loads(status) not in statuses:
                        pipe.unwatch()
                        return False
                    release = ends and pipe.get(active_key) == job_id.encode()
                    pipe.multi()
                    pipe.hset(key, mapping=self._encode(values))
                    if release:
                        pipe.delete(active_key)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def add_epoch(self, job_id: str, metrics: dict[str, float]) -> None:
        self.redis.hset(self._key("job", job_id, "epochs"), str(int(metrics["epoch"])), json.dumps(metrics))

    def epochs(self, job_id: str) -> list[dict[str, float]]:
        raw = self.redis.hgetall(self._key("job", job_id, "epochs"))
        return [json.loads(raw[key]) for key in sorted(raw, key=int)]

    def _put_probe(self, job_id: str, epoch: int, data: bytes) -> None:
        self.redis.hset(self._key("job", job_id, "probes"), str(epoch), data)

    def _get_probe(self, job_id: str, epoch: int) -> bytes | None:
        return self.redis.hget(self._key("job", job_id, "probes"), str(epoch))

    def probe_epochs(self, job_id: str) -> list[int]:
        return sorted(int(key) for key in self.redis.hkeys(self._key("job", job_id, "probes")))


def open_store(url: str, stale_after: float = 30.0, queue_timeout: float = 120.0) -> JobStore:
    """The store a :attr:`JobStore.url` names: ``sqlite:/path/jobs.sqlite3`` or ``redis://host:port/db[#prefix]``.

    Raises:
        ValueError: an address of neither form.
    """
    if url.startswith("sqlite:"):
        return SqliteJobStore(Path(url.removeprefix("sqlite:")), stale_after, queue_timeout)
    if url.startswith(("redis://", "rediss://", "unix://")):
        address, _, prefix = url.partition("#")
        return RedisJobStore(address, prefix or "cae", stale_after, queue_timeout)
    raise ValueError(f"not a job-store address: {url!r} (expected sqlite:PATH or redis://...)")
