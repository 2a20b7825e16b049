"""A finished run is never thrown away: the real training path (``run_job`` in this process, real Keras training on
the bundled digits) against a store that refuses the save, a name taken during training, a store with no room, and
a save killed midway."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from app.config import PROJECT_ROOT, Settings
from app.core.store import ModelStore
from app.core.training import TrainingObserver
from app.jobs.sqlite_store import SqliteJobStore
from app.jobs.worker import RECOVERY_FOLDER, run_job

pytestmark = pytest.mark.slow

QUICK = {"dataset": "mnist-subset", "conv_layers": [{"filters": 2}], "dense_layers": [], "max_train": 128,
         "max_test": 16, "epochs": 1, "batch_size": 64}


@pytest.fixture
def workplace(tmp_path):
    """(settings, job store) with a model store, state folder and job store of their own."""
    settings = Settings.from_env({"MODEL_STORE": str(tmp_path / "models"), "STATE_DIR": str(tmp_path / "state")})
    return settings, SqliteJobStore(tmp_path / "state" / "jobs.sqlite3")


def run(settings, store, name: str, extra: TrainingObserver | None = None):
    job = store.create({**QUICK, "name": name})
    status = run_job(job.id, store, settings, extra)
    return status, store.get(job.id)


def test_a_refused_save_keeps_the_trained_model_for_recovery(workplace, monkeypatch):
    settings, store = workplace

    def read_only(self, *args, **kwargs):
        if self.root == settings.model_store:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_save(self, *args, **kwargs)

    real_save = ModelStore.save
    monkeypatch.setattr(ModelStore, "save", read_only)
    status, job = run(settings, store, "refused")
    assert status == "failed" and not job.saved and "Read-only file system" in job.error
    recovered = settings.state_dir / RECOVERY_FOLDER
    (folder,) = recovered.iterdir()
    assert str(folder) in job.error and "move that folder into the model store" in job.error
    loaded = ModelStore(recovered).get(folder.name)  # the weights are whole and open like any model
    assert loaded.meta["job_id"] == job.id and loaded.engine.n_images == 16


def test_a_name_taken_during_training_gets_a_free_name(workplace):
    settings, store = workplace

    class TakeTheName(TrainingObserver):
        def on_epoch_end(self, epoch, metrics, probe):
            (settings.model_store / "raced").mkdir(parents=True, exist_ok=True)

    status, job = run(settings, store, "raced", TakeTheName())
    assert status == "succeeded" and job.saved and job.model == "raced-2"
    assert ModelStore(settings.model_store).get("raced-2").meta["job_id"] == job.id


def test_no_room_in_the_store_fails_before_training(workplace, tmp_path):
    settings, store = workplace
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cramped = Settings.from_env({"MODEL_STORE": str(blocker / "models"), "STATE_DIR": str(settings.state_dir)})
    started = time.monotonic()
    status, job = run(cramped, store, "nowhere")
    assert status == "failed" and "cannot create" in job.error and store.epochs(job.id) == []
    assert time.monotonic() - started < 30  # refused before the epochs, not after


def test_a_full_store_fails_before_training(workplace, tmp_path):
    """A real full filesystem: a 64 kB tmpfs (root only; CI runs as root)."""
    settings, store = workplace
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        full = Settings.from_env({"MODEL_STORE": str(mount), "STATE_DIR": str(settings.state_dir)})
        status, job = run(full, store, "too-big")
        assert status == "failed" and "free" in job.error and store.epochs(job.id) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


SAVE_FOREVER = """
import sys, numpy as np
from app.core.store import ModelStore
from tests.conftest import build_tiny_model
images = np.random.default_rng(0).random((400_000, 6, 6, 1), dtype=np.float32)  # slow to compress
ModelStore(sys.argv[1]).save("killed", build_tiny_model(), images, np.zeros(len(images), np.int64), {})
"""


def test_a_save_killed_midway_leaves_no_model_and_its_temp_folder_is_cleaned(tmp_path):
    root = tmp_path / "models"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(root)], cwd=PROJECT_ROOT, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while not any((folder / "model.keras").exists() for folder in root.glob(".tmp-*")):
        assert process.poll() is None and time.monotonic() < deadline, "the save never started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    store = ModelStore(root)
    assert store.names() == [] and [p.name for p in root.iterdir() if p.name.startswith(".tmp-")]
    assert store.remove_stale_temporaries(older_than=3600) == []  # young: could be a save in progress
    time.sleep(1.1)
    assert len(store.remove_stale_temporaries(older_than=1)) == 1
    assert list(root.iterdir()) == []
