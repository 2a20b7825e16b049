"""The Celery app both sides share: the web process sends tasks with it, the worker (:mod:`~app.jobs.celery_worker`)
registers the training task and the layer task on it. Configuration only: no settings are read here.

Training goes to the default queue, whole-layer work (statistics over a test set, a layer's feature pictures) to
:data:`LAYER_QUEUE`: a worker started without ``-Q`` takes both, and a worker started with ``-Q layers`` keeps layer
results from waiting behind an hour of training.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

TASK_NAME = "app.jobs.train"
LAYER_TASK_NAME = "app.jobs.layer"
TRAINING_QUEUE = "celery"
LAYER_QUEUE = "layers"


def make_celery(redis_url: str) -> Celery:
    """A Celery app with ``redis_url`` as broker, configured for long training tasks on a solo pool."""
    app = Celery("cnn_activation_explorer", broker=redis_url)
    app.conf.update(
        task_ignore_result=True,  # outcomes live in the job store, not in a result backend
        worker_prefetch_multiplier=1,  # a solo worker must not reserve jobs it cannot start
        task_acks_late=False,  # a training job is not retried on worker loss: the job store records the failure
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue=TRAINING_QUEUE,
        task_queues=[Queue(TRAINING_QUEUE), Queue(LAYER_QUEUE)],  # what a worker without -Q consumes
    )
    return app
