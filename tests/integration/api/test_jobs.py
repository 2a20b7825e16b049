"""Training jobs end to end through the JSON API and the REAL runners: a fresh worker process per job (embedded),
and a Celery worker (``--pool=solo``) with a real redis-server started by the test."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from tests.app_context import refresh_context, served_context
from tests.services_support import celery_worker, redis_server

pytestmark = pytest.mark.slow

TINY = {
    "dataset": "mnist-subset",
    "conv_layers": [{"filters": 4}, {"filters": 8}],
    "dense_layers": [{"units": 16}],
    "max_train": 640,
    "max_test": 50,
    "batch_size": 64,
    "probe_image": 3,
    "probe_layer": "Conv2D_2",
}


def wait_for(client, job_id: str, predicate, timeout: float = 90.0, every: float = 0.05) -> tuple[dict, list[dict]]:
    """Poll GET /api/jobs/<id> until ``predicate(job)``; return the last answer and every answer seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.get_json()
        job = response.get_json()
        seen.append(job)
        if predicate(job):
            return job, seen
        assert time.monotonic() < deadline, f"timed out; last state {job['status']}, error {job['error']}"
        time.sleep(every)


def finished(job: dict) -> bool:
    return not job["active"]


@pytest.fixture
def data_dir(tmp_path):
    """The DATA_DIR of :func:`client`."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def client(app_store, tmp_path, monkeypatch):
    """The API on the embedded engine, with a temporary model store, STATE_DIR and DATA_DIR; no job outlives the
    test."""
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    refresh_context()
    from app.main import server

    test_client = server.test_client()
    yield test_client
    for job in test_client.get("/api/jobs").get_json()["jobs"]:
        if job["active"]:
            test_client.post(f"/api/jobs/{job['id']}/stop")
            wait_for(test_client, job["id"], finished)
    refresh_context()


def test_run_streams_epochs_in_order_and_saves_an_explorable_model(client, app_store):
    # ~0.5 s epochs: long enough for a 50 ms poll to catch the run between epochs even on a busy machine
    response = client.post("/api/jobs", json={**TINY, "name": "streamed", "epochs": 3, "max_train": 1600})
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    assert client.get("/api/jobs").get_json()["jobs"][0]["id"] == job_id

    job, seen = wait_for(client, job_id, finished)
    assert job["status"] == "succeeded", job["error"]
    assert job["saved"] and job["model"] == "streamed" and job["fraction"] == 1.0
    # streamed: viewers saw the epochs arrive one by one while the job ran, never out of order
    counts = [len(answer["epochs"]) for answer in seen]
    assert counts == sorted(counts)
    assert {1, 2} & {len(answer["epochs"]) for answer in seen if answer["status"] == "running"}
    assert any(0 < answer["batches_done"] < answer["batches_total"] for answer in seen)
    assert [row["epoch"] for row in job["epochs"]] == [1, 2, 3]
    for row in job["epochs"]:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"} <= set(row)
    assert job["epochs"][0]["learning_rate"] > job["epochs"][2]["learning_rate"]  # the power decay runs
    assert job["probe_epochs"] == [1, 2, 3] and job["info"]["probe"]["image"] == 3
    probe = client.get(f"/api/jobs/{job_id}/probe?epoch=2").get_json()
    assert probe["layer"] == "Conv2D_2" and probe["shape"] == [11, 11, 8] and len(probe["probabilities"]) == 10

    model = client.get("/api/models/streamed")
    assert model.status_code == 200, model.get_json()
    assert model.get_json()["test_set_size"] == 50
    meta = served_context().store.get("streamed").meta
    assert len(meta["history"]) == 3 and meta["job_id"] == job_id and meta["stopped"] is False
    assert not any(path.name.startswith(".tmp") for path in app_store.iterdir())


def test_second_start_refused_then_stop_mid_run_with_and_without_partial_save(client, app_store):
    long_run = {**TINY, "epochs": 200}
    first = client.post("/api/jobs", json={**long_run, "name": "stopped-run"})
    assert first.status_code == 202
    job_id = first.get_json()["id"]
    second = client.post("/api/jobs", json={**long_run, "name": "other"})
    assert second.status_code == 409 and "already running" in second.get_json()["error"]

    wait_for(client, job_id, lambda job: len(job["epochs"]) >= 1)
    stopped = client.post(f"/api/jobs/{job_id}/stop")
    assert stopped.status_code == 200 and stopped.get_json()["stop_requested"]
    job, _ = wait_for(client, job_id, finished, timeout=30)
    assert job["status"] == "stopped" and not job["saved"] and len(job["epochs"]) < 200
    assert not (app_store / "stopped-run").exists()
    assert client.post(f"/api/jobs/{job_id}/stop").status_code == 409  # already ended

    partial = client.post("/api/jobs", json={**long_run, "name": "partial"}).get_json()["id"]
    job, _ = wait_for(client, partial, lambda job: len(job["probe_epochs"]) >= 1)
    assert client.get(f"/api/jobs/{partial}/probe").get_json()["layer"] == "Conv2D_2"
    # watch another image at another layer while it runs
    refused = client.post(f"/api/jobs/{partial}/probe", json={"image": 10**6, "layer": "Nope"})
    assert refused.status_code == 400 and len(refused.get_json()["errors"]) == 2
    assert client.post(f"/api/jobs/{partial}/probe", json={"image": 7, "layer": "Dense_1"}).status_code == 200
    job, _ = wait_for(client, partial, lambda job: job["info"]["probe"]["image"] == 7)
    changed_from = max(job["probe_epochs"]) + 1  # applied at the next epoch end at the latest
    job, _ = wait_for(client, partial, lambda job: max(job["probe_epochs"]) >= changed_from)
    probe = client.get(f"/api/jobs/{partial}/probe?epoch={changed_from}").get_json()
    assert (probe["layer"], probe["image"], probe["shape"]) == ("Dense_1", 7, [16])
    first = client.get(f"/api/jobs/{partial}/probe?epoch=1").get_json()
    assert (first["layer"], first["image"]) == ("Conv2D_2", 3)  # earlier records keep what they recorded
    assert set(job["info"]["probe_images"]) == {"3", "7"}
    assert client.post(f"/api/jobs/{partial}/stop", json={"save_partial": True}).status_code == 200
    # a second click, or a second viewer, stopping without the switch: adds nothing, takes nothing back
    assert client.post(f"/api/jobs/{partial}/stop").status_code in (200, 409)
    job, _ = wait_for(client, partial, finished, timeout=30)
    assert job["status"] == "stopped" and job["saved"]
    meta = served_context().store.get("partial").meta
    assert meta["stopped"] is True and 1 <= meta["epochs_completed"] < 200


def test_invalid_requests_get_clear_errors(client):
    response = client.post(
        "/api/jobs", json={"epochs": 0, "colour": "red", "conv_layers": [{"filters": 8, "activation": "swish"}]}
    )
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert any("epochs must be between 1 and 500" in e for e in errors)
    assert any("unknown settings: colour" in e for e in errors)
    assert any("conv layer 1 activation" in e for e in errors)
    not_json = client.post("/api/jobs", data="epochs=3", content_type="text/plain")
    assert not_json.status_code == 415 and "application/json" in not_json.get_json()["error"]
    exists = client.post("/api/jobs", json={**TINY, "name": "mnist-cnn"})
    assert exists.status_code == 409 and "already exists" in exists.get_json()["error"]
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/stop").status_code == 404
    # six 1x1 conv layers pooled by 2 after each but the last: 28 14 7 3 1, and the fifth pooling leaves nothing
    pooled_away = client.post("/api/jobs", json={**TINY, "name": "pooled-away", "pool_size": 2,
                                                 "conv_layers": [{"filters": 2, "kernel": 1}] * 6})
    assert pooled_away.status_code == 400
    assert pooled_away.get_json()["errors"][0].startswith("pooling after conv layer 5 leaves no pixels: 1×1 pooled")
    assert client.get("/api/jobs").get_json()["jobs"] == []  # nothing was started


def test_failure_keeps_its_message_and_a_killed_worker_does_not_block(client, data_dir):
    no_data = client.post("/api/jobs", json={**TINY, "name": "nodata", "dataset": "/no/such/data.npz"})
    assert no_data.status_code == 400 and "unknown dataset" in no_data.get_json()["errors"][0]  # caught up front
    # 11x11 kernels leave no pixels of a 28x28 image: the cost estimate finds out before anything is built
    too_wide = [{"filters": 4, "kernel": 11}] * 3
    shrinking = client.post("/api/jobs", json={**TINY, "name": "shrinks", "conv_layers": too_wide})
    assert shrinking.status_code == 400 and "leaves no pixels" in shrinking.get_json()["errors"][0]
    # a dataset file in DATA_DIR that turns out unusable only once the worker reads it
    np.savez(data_dir / "partial.npz", x_train=np.zeros((20, 28, 28), np.uint8))
    bad = client.post("/api/jobs", json={**TINY, "name": "bad-data", "dataset": "partial.npz"}).get_json()["id"]
    job, _ = wait_for(client, bad, finished)
    assert job["status"] == "failed" and "lacks" in job["error"]

    victim = client.post("/api/jobs", json={**TINY, "name": "killed", "epochs": 200}).get_json()["id"]
    job, _ = wait_for(client, victim, lambda job: job["status"] == "running" and job["pid"])
    os.kill(job["pid"], signal.SIGKILL)
    job, _ = wait_for(client, victim, finished, timeout=15)
    assert job["status"] == "failed" and "exited with code -9" in job["error"]
    assert client.post("/api/jobs", json={**TINY, "name": "after", "epochs": 1}).status_code == 202


@pytest.fixture
def celery_client(app_store, tmp_path, monkeypatch):
    """The API on the Celery engine: a real redis-server and a real ``celery worker --pool=solo``."""
    env = {"MODEL_STORE": str(app_store), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with redis_server() as url, celery_worker({**env, "REDIS_URL": url}, tmp_path / "celery.log"):
        monkeypatch.setenv("REDIS_URL", url)
        monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
        refresh_context()
        from app.main import server

        try:
            yield server.test_client()
        finally:
            refresh_context()


def test_celery_engine_runs_streams_and_saves(celery_client, app_store):

    assert served_context().job_runner.engine == "celery"
    # ~0.5 s epochs, as in the embedded engine's test: a 50 ms poll then catches the run between its two epochs
    # even on a busy machine (with 640 images, CI's poll once missed that window)
    response = celery_client.post("/api/jobs", json={**TINY, "name": "via-celery", "epochs": 2, "max_train": 1600})
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    refused = celery_client.post("/api/jobs", json={**TINY, "name": "other"})
    assert refused.status_code == 409
    job, seen = wait_for(celery_client, job_id, finished, timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["engine"] == "celery" and [row["epoch"] for row in job["epochs"]] == [1, 2]
    assert 1 in {len(answer["epochs"]) for answer in seen if answer["status"] == "running"}
    assert (app_store / "via-celery" / "meta.json").is_file()
    assert celery_client.get("/api/models/via-celery").status_code == 200


def test_the_training_process_runs_under_a_memory_limit(client, monkeypatch):
    """The blog's CNN at batch 1536 needs ~1.7 GB to train (within the cost budget): under a 900 MB limit its
    first batch fails at once, reported as out of memory, instead of the process growing until the machine swaps."""
    monkeypatch.setenv("TRAINING_MEMORY_MB", "900")
    big_batches = {"name": "starved", "dataset": "mnist-subset", "batch_size": 1536, "epochs": 1}
    job_id = client.post("/api/jobs", json=big_batches).get_json()["id"]
    job, _ = wait_for(client, job_id, finished, timeout=60)
    assert job["status"] == "failed" and "out of memory" in job["error"]
    assert client.get("/healthz").status_code == 200
