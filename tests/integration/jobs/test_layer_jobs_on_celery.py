"""Whole-layer jobs on the Celery engine: with ``REDIS_URL`` set, a statistic too costly for a request is sent to
the ``layers`` queue, a real ``celery worker -Q layers`` (solo pool) computes it, and the API answers 202 with the
job's progress, then 200 with what a request computes itself, the class means checked against Keras."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from app.core.statistics import StatisticsCache
from tests.app_context import refresh_context, served_context
from tests.services_support import celery_worker, redis_server

JOB_SECONDS = 180  # a Celery worker importing TensorFlow on a busy 2-core machine, then the model opened and a pass


@pytest.fixture
def layer_worker_client(app_store, tmp_path, monkeypatch):
    """The API with ``REDIS_URL`` set and no pass cheap enough for a request, a Celery worker on ``layers`` only."""
    env = {"MODEL_STORE": str(app_store), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with redis_server() as url, celery_worker({**env, "REDIS_URL": url}, tmp_path / "celery.log", queues="layers"):
        monkeypatch.setenv("REDIS_URL", url)
        monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("IN_REQUEST_GFLOPS", "0")
        refresh_context()
        from app.main import server

        try:
            yield server.test_client()
        finally:
            refresh_context()


def test_a_class_mean_is_computed_by_a_celery_worker_and_equals_keras(layer_worker_client, tmp_path):
    url = "/api/models/mnist-cnn/class-mean?layer=Dense_2&label=4"
    first = layer_worker_client.get(url)
    assert first.status_code == 202, first.get_json()
    assert first.get_json()["status"] in ("running", "queued")
    assert not list((tmp_path / "state" / "statistics").rglob("*.log"))  # not a process of the web worker's
    deadline = time.monotonic() + JOB_SECONDS
    while (answer := layer_worker_client.get(url)).status_code == 202:
        assert time.monotonic() < deadline, (tmp_path / "celery.log").read_text()[-2000:]
        time.sleep(0.5)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()

    loaded = served_context().store.get("mnist-cnn")
    in_request = StatisticsCache().class_means(loaded, "Dense_2")
    np.testing.assert_array_equal(np.asarray(body["values"], np.float32), in_request.means[4])
    fours = loaded.images[loaded.labels == 4]
    dense = keras.Model(loaded.model.inputs, loaded.model.get_layer("Dense_2").output)
    expected = np.asarray(dense.predict(fours, verbose=0), np.float64).mean(axis=0)
    assert body["count"] == len(fours)
    np.testing.assert_allclose(body["values"], expected, rtol=1e-4, atol=1e-5)
    assert "Task app.jobs.layer[" in (tmp_path / "celery.log").read_text()
