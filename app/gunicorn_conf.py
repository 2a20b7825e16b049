"""gunicorn settings: warm each worker after the fork so the first request of a user is not a cold start.

TensorFlow is imported in the worker (after the fork), never in the master: with ``--preload`` inference hangs.
"""

import logging

from app import services
from app.core.errors import ExplorerError

logger = logging.getLogger("gunicorn.error")


def post_worker_init(worker):
    """Open the bundled model and trace its probe model once (a few seconds per worker, at boot)."""
    try:
        loaded = services.store().get("mnist-cnn")
        loaded.engine.activations(loaded.engine.layers[0].name, 0)
    except ExplorerError as exc:
        logger.info("no warm-up: %s", exc)
