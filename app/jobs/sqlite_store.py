"""The embedded job-store engine: one SQLite file (WAL) shared by every process on the machine; nothing to start."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Any

from app.jobs.records import ACTIVE, BOOL_FIELDS, JOB_FIELDS, JSON_FIELDS, Job, JobStoreUnavailable
from app.jobs.store import JobStore


def _encode_value(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return json.dumps(value)
    if name in BOOL_FIELDS:
        return int(bool(value))
    return value


def _decode_row(row: dict[str, Any]) -> Job:
    values = dict(row)
    for name in JSON_FIELDS:
        values[name] = json.loads(values[name]) if values.get(name) else {}
    for name in BOOL_FIELDS:
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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobStoreUnavailable(f"cannot create the job store's folder: {exc.strerror or exc}") from exc
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
        # half-used by a child process. A database that cannot be used (corrupt, disk full, folder gone) is a
        # JobStoreUnavailable with SQLite's reason, which pages show and the API answers with 503.
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise JobStoreUnavailable(f"the job store cannot be opened: {exc}") from exc
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        except sqlite3.Error as exc:
            raise JobStoreUnavailable(f"the job store cannot be used: {exc}") from exc
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
