"""Training jobs: a shared job store and a job runner, each an embedded default and a scale-out engine.

Which engines an instance uses is a settings choice made here once, not an ``if`` in every caller:
``REDIS_URL`` empty -> SQLite job store in ``STATE_DIR`` + a fresh worker process per job;
``REDIS_URL`` set -> Redis job store + Celery workers.
"""

from __future__ import annotations

import functools
from pathlib import Path

from app import services
from app.jobs.runner import CeleryRunner, EmbeddedRunner, JobRunner
from app.jobs.store import JobStore, RedisJobStore, SqliteJobStore

JOB_DB = "jobs.sqlite3"


def make_store(state_dir: Path, redis_url: str = "") -> JobStore:
    """The job store for these settings: Redis when ``redis_url`` is set, else SQLite in ``state_dir``."""
    return RedisJobStore(redis_url) if redis_url else SqliteJobStore(Path(state_dir) / JOB_DB)


@functools.lru_cache(maxsize=4)
def _runner(state_dir: Path, redis_url: str, model_store: Path) -> JobRunner:
    store = make_store(state_dir, redis_url)
    if redis_url:
        return CeleryRunner(store, model_store, redis_url)
    return EmbeddedRunner(store, model_store, Path(state_dir) / "job-logs")


def runner() -> JobRunner:
    """The process's job runner for the current settings (keyed by them, so tests that change them get a new one)."""
    settings = services.settings()
    return _runner(settings.state_dir, settings.redis_url, settings.model_store)


def job_store() -> JobStore:
    """The job store of :func:`runner`."""
    return runner().store
