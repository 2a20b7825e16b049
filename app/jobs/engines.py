"""Which engines an instance uses, chosen here once from the settings, not with an ``if`` in every caller.

``REDIS_URL`` empty -> SQLite job store in ``STATE_DIR`` + a fresh worker process per job (training and layer jobs);
``REDIS_URL`` set -> Redis job store + Celery workers (training on the default queue, layer jobs on ``layers``).
"""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.core.user_images import UserImageStore
from app.jobs.background import CeleryLauncher, ProcessLauncher
from app.jobs.redis_store import RedisJobStore
from app.jobs.runner import CeleryRunner, EmbeddedRunner, JobRunner
from app.jobs.sqlite_store import SqliteJobStore
from app.jobs.store import JobStore

JOB_DB = "jobs.sqlite3"
JOB_LOGS = "job-logs"


def make_store(state_dir: Path, redis_url: str = "") -> JobStore:
    """The job store for these settings: Redis when ``redis_url`` is set, else SQLite in ``state_dir``."""
    return RedisJobStore(redis_url) if redis_url else SqliteJobStore(Path(state_dir) / JOB_DB)


def make_runner(settings: Settings, user_images: UserImageStore | None = None) -> JobRunner:
    """The job runner (with its store) for ``settings``: Celery when ``REDIS_URL`` is set, else embedded; a probe
    image ``u:<id>`` must be one of ``user_images`` (when given)."""
    store = make_store(settings.state_dir, settings.redis_url)
    if settings.redis_url:
        return CeleryRunner(store, settings.model_store, settings.data_sources, settings.redis_url, user_images)
    return EmbeddedRunner(store, settings.model_store, settings.data_sources, Path(settings.state_dir) / JOB_LOGS,
                          user_images)


def make_layer_launcher(settings: Settings) -> ProcessLauncher | CeleryLauncher:
    """Where whole-layer jobs (statistics, feature pictures) run for ``settings``: Celery's ``layers`` queue when
    ``REDIS_URL`` is set, else a process on the web worker's machine."""
    return CeleryLauncher(settings.redis_url) if settings.redis_url else ProcessLauncher()


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
