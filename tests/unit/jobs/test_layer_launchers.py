"""Where layer jobs run: the launcher follows the instance's job engine, and a queue that cannot be reached is a
clear 'unavailable' with nothing left behind that would make later requests wait for a job that was never sent."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from app.config import Settings
from app.core.errors import TooLarge, Unavailable
from app.core.store import ModelStore
from app.jobs.background import BackgroundJobs, CeleryLauncher, ProcessLauncher
from app.jobs.engines import make_layer_launcher
from app.jobs.statistics_worker import TENSORFLOW_BYTES, check_job_memory
from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder
from tests.services_support import free_port


class ProbeJobs(BackgroundJobs):
    folder_name = "probe"
    worker_module = "app.jobs.statistics_worker"
    what = "probe"


def test_the_launcher_follows_the_job_engine(tmp_path):
    embedded = Settings.from_env({"STATE_DIR": str(tmp_path)})
    assert isinstance(make_layer_launcher(embedded), ProcessLauncher)
    assert isinstance(make_layer_launcher(replace(embedded, redis_url="redis://127.0.0.1:1/0")), CeleryLauncher)


def test_an_unreachable_queue_is_unavailable_and_leaves_no_lock_or_progress(tmp_path):
    jobs = ProbeJobs(tmp_path / "state", tmp_path / "store", CeleryLauncher(f"redis://127.0.0.1:{free_port()}/0"))
    jobs.launcher.celery.conf.broker_connection_timeout = 1
    jobs.launcher.celery.conf.task_publish_retry = False
    result = jobs.folder / "result.npz"
    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot reach the job queue"):
        jobs.status(result, lambda path: None, ["--model", "m"])
    assert time.monotonic() - started < 30
    assert sorted(path.name for path in jobs.folder.iterdir()) == []
    assert jobs.running() == 0


def test_a_queued_lock_without_a_process_is_held_until_it_is_stale(tmp_path):
    jobs = ProbeJobs(tmp_path / "state", tmp_path / "store")
    jobs.folder.mkdir(parents=True)
    lock = jobs.folder / "result.lock"
    lock.write_text(json.dumps({"queued": True, "started": time.time()}))
    assert jobs.running() == 1  # no pid to check on this machine: a Celery worker elsewhere may hold it
    lock.write_text(json.dumps({"queued": True, "started": time.time() - 3600}))
    assert jobs.running() == 0 and not lock.exists()


def test_a_job_whose_batch_would_pass_the_memory_limit_is_refused_before_its_pass(tmp_path):
    images, labels = tiny_test_set()
    write_model_folder(tmp_path, "tiny", build_tiny_model(), images, labels)
    loaded = ModelStore(tmp_path).get("tiny")
    check_job_memory(loaded, 2 * 2**30)  # fits
    with pytest.raises(TooLarge, match=r"needs ~.* \(batches of 64 images\), more than the job memory limit"):
        check_job_memory(loaded, TENSORFLOW_BYTES // 2)
