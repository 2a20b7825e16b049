"""Celery's entry point: ``celery -A app.jobs.celery_worker worker --pool=solo --concurrency=1`` (training and layer
jobs; ``-Q layers`` for a worker that only computes layers' statistics and feature pictures).

``--pool=solo`` runs the task in the worker process itself: Celery's default prefork pool would fork a child of a
process that may have imported TensorFlow, and TF hangs there (measured, see :mod:`app.jobs.runner`). The worker reads
``REDIS_URL`` (broker and job store), ``MODEL_STORE`` and the dataset settings from the environment
(:class:`app.config.Settings`); the model store must be the folder the web servers read (shared disk when on other
machines).
"""

from __future__ import annotations

from celery.signals import worker_init

from app.config import Settings
from app.jobs import features_worker, statistics_worker
from app.jobs.celery_app import LAYER_TASK_NAME, TASK_NAME, make_celery
from app.jobs.redis_store import RedisJobStore
from app.jobs.worker import limit_memory, run_job

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"

SETTINGS = Settings.from_env()
BROKER = SETTINGS.redis_url or DEFAULT_BROKER

celery_app = make_celery(BROKER)

# The layer jobs a web server may send, by the module whose command they run (nothing else is run).
LAYER_COMMANDS = {
    statistics_worker.__name__: statistics_worker.run_command,
    features_worker.__name__: features_worker.run_command,
}


@worker_init.connect
def _limit_memory(**_kwargs) -> None:
    limit_memory(SETTINGS)


@celery_app.task(name=TASK_NAME)
def train_job(job_id: str) -> str:
    """Run one queued job with this worker's settings; returns its final status."""
    return run_job(job_id, RedisJobStore(BROKER), SETTINGS)


@celery_app.task(name=LAYER_TASK_NAME)
def layer_job(module: str, arguments: list[str]) -> None:
    """Run one layer job: the command line ``python -m module`` would run, in this worker."""
    if module not in LAYER_COMMANDS:
        raise ValueError(f"not a layer job: {module!r}")
    LAYER_COMMANDS[module](list(arguments))
