"""gunicorn settings: workers, threads and TensorFlow's thread pools; each worker warmed after the fork so the
first request of a user is not a cold start. The worker reads requests in an event loop and runs the app in its
``threads`` (:mod:`app.serving.front`): a slow client holds no thread.

TensorFlow is imported in the worker (after the fork), never in the master: with ``--preload`` inference hangs.
Command-line flags (``--workers``, ``--threads``) override ``workers`` and ``threads`` here; the environment's
``WORKERS``, ``THREADS``, ``TF_INTRA_OP_THREADS`` and ``TF_INTER_OP_THREADS`` set the defaults.
"""

import logging
import os

from app.context import of_server

logger = logging.getLogger("gunicorn.error")

CORES = os.cpu_count() or 1
workers = int(os.environ.get("WORKERS", "2"))
threads = int(os.environ.get("THREADS", "4"))
# Requests are read in an event loop and the app gets them whole (app/serving/front.py): slow clients hold no thread.
worker_class = "app.serving.front.Worker"


def tf_pool_sizes(env=os.environ) -> tuple[int, int]:
    """(intra-op, inter-op) threads of each worker's TensorFlow: ``TF_INTRA_OP_THREADS`` / ``TF_INTER_OP_THREADS``,
    else every core (what TensorFlow itself would choose), set explicitly so the log of a run says what ran.

    Cutting each worker's pools to its share of the cores did not pay here (2 cores, 2 workers x 4 threads, 8
    clients on the explorer's callback, a machine shared with other jobs): 93-97 views/s with 2 threads per pool,
    34-59 with 1 intra-op thread (1 or 2 inter-op); a forward-pass-only load of two processes x 4 threads swung
    from 460 to 1,440 passes/s between identical runs, with no setting ahead of the default.
    """
    return int(env.get("TF_INTRA_OP_THREADS", str(CORES))), int(env.get("TF_INTER_OP_THREADS", str(CORES)))


def post_worker_init(worker):
    """Size TensorFlow's thread pools (before its first op), then open the bundled model (which traces its probe)."""
    import tensorflow as tf

    intra, inter = tf_pool_sizes()
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    logger.info("worker of %d x %d threads; TensorFlow pools: %d intra-op, %d inter-op threads",
                worker.cfg.workers, worker.cfg.threads, intra, inter)
    of_server(worker.wsgi).open_default_model()  # traces and compiles its probe before the worker serves
