"""The real app on a temporary model store and job store, where no training process can be started.

The store is ``app_store``'s (the tiny models, the broken folders and a copy of the bundled ``mnist-cnn``), built
once per module rather than per test: opening the models and computing their statistics costs seconds, and the
suites run one test per callback and per route.

A request in these tests may describe a valid training run (the strategies reach valid forms and JSON bodies too);
the runner then records the job as usual but, instead of launching a worker, ends it at once as failed. Every
other part of the request path (validation, the store's rules, the answer) runs for real.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.core.training import TrainingConfig
from app.jobs.runner import EmbeddedRunner
from tests.app_context import refresh_context, served_context
from tests.conftest import BUNDLED_MODEL, fill_tiny_store

NOT_LAUNCHED = "not launched: hostile-input test"


@pytest.fixture(scope="module")
def launched() -> list[str]:
    """The ids of the jobs the module's requests asked the runner to launch; none of them ran."""
    return []


@pytest.fixture(scope="module")
def client(tmp_path_factory, launched):
    """Flask's test client on the app, with ``app_store``'s models as MODEL_STORE and a fresh STATE_DIR."""
    root = tmp_path_factory.mktemp("hostile")
    store = fill_tiny_store(root / "store")
    shutil.copytree(BUNDLED_MODEL, store / "mnist-cnn")

    def record_and_end(runner, job):
        launched.append(job.id)
        runner.store.finish(job.id, "failed", error=NOT_LAUNCHED)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STORE", str(store))
        patch.setenv("STATE_DIR", str(root / "state"))
        patch.delenv("REDIS_URL", raising=False)
        patch.delenv("AUTH_USERS", raising=False)
        patch.setattr(EmbeddedRunner, "_launch", record_and_end)
        refresh_context()
        from app.main import server

        try:
            yield server.test_client()
        finally:
            refresh_context()


@pytest.fixture(scope="module")
def finished_job(client) -> dict:
    """A succeeded 3-epoch job with metrics and probe records (as a worker writes them), for the training page.

    Returns:
        The ``train-view`` signature the page keeps for it (``{"job", "epochs", "status", "total"}``).
    """
    store = served_context().job_store
    job = store.create(TrainingConfig(name="hostile-run").to_dict(), engine="embedded")
    store.claim(job.id, pid=0)
    rng = np.random.default_rng(0)
    pixels = rng.random((28, 28, 1), dtype=np.float32)
    store.update(job.id, epochs_total=3, batches_per_epoch=2, epoch=3, batch=2,
                 info={"class_names": [str(i) for i in range(10)], "test_size": 1000,
                       "probe_images": {"3": {"image": 3, "label": 5, "pixels": pixels.tolist()}}})
    for epoch in (1, 2, 3):
        store.add_epoch(job.id, {"epoch": epoch, "loss": 1.0 / epoch, "accuracy": 0.5, "val_loss": 1.1 / epoch,
                                 "val_accuracy": 0.4, "learning_rate": 0.001, "epoch_seconds": 0.1})
        store.add_probe(job.id, epoch, "Conv2D_1", 3, rng.random((26, 26, 4), dtype=np.float32),
                        rng.dirichlet(np.ones(10)).astype(np.float32))
    store.finish(job.id, "succeeded", saved=False)
    return {"job": job.id, "epochs": 3, "status": "succeeded", "total": 3}
