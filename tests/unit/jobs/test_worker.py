"""The worker's observer and heartbeat thread against a real SQLite job store (no training needed)."""

from __future__ import annotations

import time

import numpy as np

from app.jobs.sqlite_store import SqliteJobStore
from app.jobs.worker import Pulse, StoreObserver


def running_job(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job = store.create({"name": "m"})
    store.claim(job.id, pid=1)
    return store, job.id


def test_observer_streams_epochs_and_probes_and_tracks_progress(tmp_path):
    store, job_id = running_job(tmp_path)
    observer = StoreObserver(store, job_id)
    observer.on_train_begin(epochs=2, batches_per_epoch=10)
    assert store.get(job_id).batches_total == 20
    for batch in range(1, 11):
        observer.on_batch_end(1, batch, 10)
    probe = {"image": 4, "layer": "Conv2D_1", "activations": np.ones((3, 3, 2)), "probabilities": np.full(10, 0.1)}
    observer.on_epoch_end(1, {"loss": 0.5, "accuracy": 0.9}, probe)
    observer.on_batch_end(2, 5, 10)
    progress = observer.progress()
    assert (progress["epoch"], progress["batch"]) == (2, 5) and progress["eta_seconds"] >= 0
    (row,) = store.epochs(job_id)
    assert row["epoch"] == 1 and row["loss"] == 0.5 and abs(row["recorded_at"] - time.time()) < 5
    assert store.probe(job_id, 1)["image"] == 4
    assert not observer.should_stop()


def test_pulse_writes_heartbeat_and_progress_and_relays_a_stop(tmp_path):
    store, job_id = running_job(tmp_path)
    observer = StoreObserver(store, job_id)
    observer.on_train_begin(epochs=1, batches_per_epoch=100)
    observer.on_batch_end(1, 40, 100)
    before = store.get(job_id).heartbeat
    pulse = Pulse(store, job_id, observer, interval=0.05)
    pulse.start()
    try:
        deadline = time.monotonic() + 5
        while store.get(job_id).batch != 40:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert store.get(job_id).heartbeat > before and store.get(job_id).batches_done == 40
        assert not observer.should_stop()
        store.request_stop(job_id)
        while not observer.should_stop():
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        pulse.stop()
    assert not pulse.is_alive()


def test_pulse_stops_a_run_whose_job_was_ended_elsewhere(tmp_path):
    store, job_id = running_job(tmp_path)
    observer = StoreObserver(store, job_id)
    store.finish(job_id, "failed", error="reaped")
    pulse = Pulse(store, job_id, observer, interval=0.05)
    pulse.start()
    try:
        assert observer.stop_event.wait(5)
    finally:
        pulse.stop()


def test_probe_change_is_handed_to_training_once_with_its_picture(tmp_path):
    from app.core.datasets import Dataset

    rng = np.random.default_rng(0)
    data = Dataset("d", rng.random((4, 6, 6, 1)), np.arange(4), rng.random((5, 6, 6, 1)), np.arange(5) % 3,
                   ["a", "b", "c"])
    store, job_id = running_job(tmp_path)
    observer = StoreObserver(store, job_id)
    observer.dataset = data
    assert observer.probe_target() is None  # nothing requested
    store.request_probe(job_id, 4, "Dense_1")
    observer.requested = store.get(job_id).probe_request  # what the pulse thread does every beat
    assert observer.probe_target() == (4, "Dense_1")
    assert observer.probe_target() is None  # handed over once
    info = store.get(job_id).info
    assert info["probe"]["image"] == 4 and info["probe"]["label"] == 1
    assert np.asarray(info["probe_images"]["4"]["pixels"]).shape == (6, 6, 1)


def test_a_probe_change_to_a_drawn_image_is_handed_over_with_its_input_and_an_unknown_one_is_a_warning(
        tmp_path, monkeypatch):
    from app.core.datasets import Dataset
    from app.jobs.records import decode_probe, encode_probe
    from tests.app_context import refresh_context

    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    refresh_context()
    rng = np.random.default_rng(0)
    data = Dataset("d", rng.random((4, 28, 28, 1)), np.arange(4), rng.random((5, 28, 28, 1)), np.arange(5) % 3,
                   ["a", "b", "c"])
    store, job_id = running_job(tmp_path)
    observer = StoreObserver(store, job_id)
    observer.dataset = data
    unknown = "u:" + "0" * 20
    store.request_probe(job_id, unknown, "Dense_1")
    observer.requested = store.get(job_id).probe_request
    assert observer.probe_target() is None  # the probe stays as it was
    assert "no drawn or uploaded image" in store.get(job_id).info["probe_warning"]
    pixels = np.zeros((28, 28, 1), np.float32)
    pixels[8:20, 12:16] = 1  # a "1"
    observer.probe_inputs[observer_id := "u:" + "a" * 20] = pixels  # as the run's start would have made it
    store.request_probe(job_id, observer_id, "Conv2D_1")
    observer.requested = store.get(job_id).probe_request
    assert observer.probe_target() == (observer_id, "Conv2D_1")
    info = store.get(job_id).info
    assert "probe_warning" not in info and info["probe"]["label"] is None
    np.testing.assert_array_equal(info["probe_images"][observer_id]["pixels"], pixels)
    record = decode_probe(encode_probe("Conv2D_1", observer_id, np.ones((2, 2, 1)), np.full(3, 1 / 3)))
    assert record["image"] == observer_id
    assert decode_probe(encode_probe("Conv2D_1", 4, np.ones((2, 2, 1)), np.full(3, 1 / 3)))["image"] == 4
    refresh_context()
