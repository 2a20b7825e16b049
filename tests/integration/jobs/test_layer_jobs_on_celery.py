"""Whole-layer jobs on the Celery engine: with ``REDIS_URL`` set, a statistic too costly for a request is sent to
the ``layers`` queue, a real ``celery worker -Q layers`` (solo pool) computes it, and the API answers 202 with the
job's progress, then 200 with what a request computes itself, the class means checked against Keras."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from app.config import PROJECT_ROOT
from app.core.statistics import StatisticsCache
from tests.app_context import refresh_context, served_context
from tests.services_support import redis_server, stop_process

JOB_SECONDS = 180  # a Celery worker importing TensorFlow on a busy 2-core machine, then the model opened and a pass


@pytest.fixture
def layer_worker_client(app_store, tmp_path, monkeypatch):
    """The API with ``REDIS_URL`` set and no pass cheap enough for a request, a Celery worker on ``layers`` only."""
    with redis_server() as url:
        env = {**os.environ, "REDIS_URL": url, "MODEL_STORE": str(app_store), "TF_CPP_MIN_LOG_LEVEL": "2"}
        log = open(tmp_path / "celery.log", "wb")  # noqa: SIM115 - closed below, after the worker ends
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app.jobs.celery_worker:celery_app", "worker", "--pool=solo",
             "--concurrency=1", "-Q", "layers", "--loglevel=INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        monkeypatch.setenv("REDIS_URL", url)
        monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("IN_REQUEST_GFLOPS", "0")
        refresh_context()
        from app.main import server

        try:
            yield server.test_client()
        finally:
            stop_process(worker, timeout=20)
            log.close()
            refresh_context()
        logging.getLogger(__name__).info("celery worker log:\n%s", (tmp_path / "celery.log").read_text()[-3000:])


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
