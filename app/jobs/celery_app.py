"""The Celery engine's app and task: ``celery -A app.jobs.celery_app worker --pool=solo --concurrency=1``.

``--pool=solo`` runs the task in the worker process itself: Celery's default prefork pool would fork a child of a
process that may have imported TensorFlow, and TF hangs there (measured, see ECOSYSTEM.md). TensorFlow is imported
only inside the task. The worker reads ``REDIS_URL`` (broker and job store) and ``MODEL_STORE`` from its
environment; the model store must be the folder the web servers read (shared disk when on other machines).
"""

from __future__ import annotations

import logging

from celery import Celery

from app.config import Settings

logger = logging.getLogger(__name__)

TASK_NAME = "app.jobs.train"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def make_celery(redis_url: str) -> Celery:
    """A Celery app with ``redis_url`` as broker and the training task registered."""
    app = Celery("cnn_activation_explorer", broker=redis_url)
    app.conf.update(
        task_ignore_result=True,  # outcomes live in the job store, not in a result backend
        worker_prefetch_multiplier=1,  # a solo worker must not reserve jobs it cannot start
        task_acks_late=False,  # a training job is not retried on worker loss: the job store records the failure
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name=TASK_NAME)
    def train_job(job_id: str) -> str:
        """Run one queued job with the worker's own settings; returns its final status."""
        from app.jobs.store import RedisJobStore
        from app.jobs.worker import run_job

        settings = Settings.from_env()
        return run_job(job_id, RedisJobStore(settings.redis_url or redis_url), settings.model_store)

    return app


celery_app = make_celery(Settings.from_env().redis_url or DEFAULT_BROKER)
