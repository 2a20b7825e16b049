"""The layer-job bookkeeping of feature visualisation: locks, stale locks, the queue, stored results."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import numpy as np

from app.core.features import LayerFeatures, Settings, save_result
from app.jobs.features import FeatureJobs, read_json, write_json


def _lock(jobs: FeatureJobs, layer: str, pid: int, started: float | None = None) -> None:
    jobs.folder.mkdir(parents=True, exist_ok=True)
    lock = jobs.paths("m", "v1", layer, Settings())[2]
    write_json(lock, {"pid": pid, "host": socket.gethostname(), "started": time.time() if started is None
                      else started})


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_second_layer_waits_while_one_runs(tmp_path):
    jobs = FeatureJobs(tmp_path, tmp_path / "store")
    _lock(jobs, "a", os.getpid())
    assert jobs.running() == 1
    job = jobs.get("m", "v1", "b")
    assert job.status == "queued" and job.progress()["fraction"] == 0.0
    assert not jobs.paths("m", "v1", "b", Settings())[2].exists()  # nothing launched
    # the running layer itself reports its progress, and no second process starts for it
    write_json(jobs.paths("m", "v1", "a", Settings())[1], {"done": 3, "total": 12, "stage": "optimising units"})
    job = jobs.get("m", "v1", "a")
    assert (job.status, job.done, job.total, job.fraction) == ("running", 3, 12, 0.25)


def test_stale_locks_are_removed(tmp_path):
    jobs = FeatureJobs(tmp_path, tmp_path / "store")
    _lock(jobs, "a", _dead_pid())
    _lock(jobs, "b", os.getpid(), started=time.time() - 10**5)
    assert jobs.running() == 0
    assert not list(jobs.folder.glob("*.lock"))


def test_a_stored_result_is_served_and_a_recent_failure_reported(tmp_path):
    jobs = FeatureJobs(tmp_path, tmp_path / "store")
    result_file, progress_file, _, _ = jobs.paths("m", "v1", "a", Settings())
    features = LayerFeatures("a", np.zeros((2, 3, 3, 1), np.float32), np.ones(2, np.float32),
                             np.zeros(2, np.float32), np.zeros(2, bool))
    save_result(result_file, features)
    job = jobs.get("m", "v1", "a")
    assert job.status == "done" and job.fraction == 1.0 and job.result.n_units == 2
    assert jobs.cached("m", "v1", "a") is not None and jobs.cached("m", "v2", "a") is None
    write_json(jobs.paths("m", "v1", "b", Settings())[1], {"failed": time.time(), "error": "boom"})
    job = jobs.get("m", "v1", "b")
    assert (job.status, job.error) == ("failed", "boom")
    assert read_json(progress_file) is None
