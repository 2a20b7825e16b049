"""A whole layer's feature visualisation as a background job, computed once and shared through ``STATE_DIR``.

Optimising every unit of a layer takes seconds to tens of seconds: never in a web worker's thread. The first
request for a layer (from any worker, any user) launches one fresh ``python -m app.jobs.features_worker`` process
(never a fork: TensorFlow hangs in a forked child of a process that has run it), guarded by a lock file created
with ``O_EXCL``, so two workers asking at once start one job. The job writes its progress next to the result, and
the result atomically (temporary file, rename) as an ``.npz`` keyed by (model, version, layer, settings): every
worker reads it from then on.

This is not the training job runner: a layer's pictures must not wait behind (or block) an hour of training, and
they need no stop, probe or job list. A lock held by a process that died (or older than :data:`STALE_SECONDS`) is
taken over; a failure is shown for :data:`RETRY_AFTER_SECONDS`, then a new request tries again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from app.core.features import DEFAULT_SETTINGS, LayerFeatures, Settings, load_result, result_path

logger = logging.getLogger(__name__)

FOLDER = "features"
STALE_SECONDS = 1800  # no layer of a model the explorer can show takes this long (mnist-cnn's largest: ~15 s)
RETRY_AFTER_SECONDS = 60
# Layer jobs running at once per instance: each is a process with its own TensorFlow (~0.5-0.8 GB) that uses every
# core it gets, so a viewer opening one layer after another queues them instead of starting one process per layer.
MAX_RUNNING = 1


@dataclass(frozen=True)
class LayerJob:
    """Where a layer's visualisation stands.

    Attributes:
        status: ``done``, ``running``, ``queued`` (waiting for another layer's job) or ``failed``.
        result: the features when done.
        done, total: units optimised so far and in all (0, 0 before the first chunk).
        stage: what the job is doing now, in words.
        error: why it failed.
    """

    status: str
    result: LayerFeatures | None = None
    done: int = 0
    total: int = 0
    stage: str = ""
    error: str = ""

    @property
    def fraction(self) -> float:
        """Share done, 0..1."""
        return 1.0 if self.status == "done" else (self.done / self.total if self.total else 0.0)

    def progress(self) -> dict[str, Any]:
        """Plain JSON for the API and the page: status, done, total, fraction, stage, error."""
        data = asdict(self)
        data.pop("result")
        data["fraction"] = round(self.fraction, 4)
        return data


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file, never half of one)."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: Any) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


class FeatureJobs:
    """Launches and reads layer visualisation jobs.

    Args:
        state_dir: the shared state folder (results go to its ``features`` folder).
        model_store: the model store folder the worker opens the model from.
    """

    def __init__(self, state_dir: Path, model_store: Path) -> None:
        self.folder = Path(state_dir) / FOLDER
        self.model_store = Path(model_store)

    def paths(self, model: str, version: str, layer: str, settings: Settings) -> tuple[Path, Path, Path, Path]:
        """``(result, progress, lock, log)`` files of one layer job."""
        result = result_path(self.folder, model, version, layer, settings)
        stem = result.with_suffix("")
        return result, stem.with_suffix(".progress.json"), stem.with_suffix(".lock"), stem.with_suffix(".log")

    def cached(self, model: str, version: str, layer: str,
               settings: Settings = DEFAULT_SETTINGS) -> LayerFeatures | None:
        """The stored result of that layer, or None."""
        return load_result(self.paths(model, version, layer, settings)[0])

    def get(self, model: str, version: str, layer: str, settings: Settings = DEFAULT_SETTINGS) -> LayerJob:
        """The layer's result if stored; else its progress, launching the job if none runs (or the last one
        failed more than :data:`RETRY_AFTER_SECONDS` ago)."""
        result_file, progress_file, lock_file, log_file = self.paths(model, version, layer, settings)
        result = load_result(result_file)
        if result is not None:
            return LayerJob("done", result, result.n_units, result.n_units, "done")
        progress = read_json(progress_file) or {}
        failed_at = progress.get("failed")
        if isinstance(failed_at, int | float) and time.time() - failed_at < RETRY_AFTER_SECONDS:
            return LayerJob("failed", error=str(progress.get("error", ""))[:500])
        if not self._holds_live_lock(lock_file):
            if self.running() >= MAX_RUNNING:
                return LayerJob("queued", stage="waiting for another layer's visualisation to finish")
            self._launch(model, version, layer, settings, lock_file, progress_file, log_file)
            progress = {}
        return LayerJob("running", None, int(progress.get("done", 0) or 0), int(progress.get("total", 0) or 0),
                        str(progress.get("stage", "starting")))

    def running(self) -> int:
        """How many layer jobs hold a live lock now (stale locks are removed on the way)."""
        if not self.folder.is_dir():
            return 0
        return sum(self._holds_live_lock(lock) for lock in self.folder.glob("*.lock"))

    def _holds_live_lock(self, lock_file: Path) -> bool:
        """True when another job holds the lock; a stale lock (dead process on this host, or too old) is removed."""
        lock = read_json(lock_file)
        if lock is None:
            if not lock_file.exists():
                return False
            lock = {}  # being written right now by its creator
            try:
                age = time.time() - lock_file.stat().st_mtime
            except FileNotFoundError:
                return False
            if age < 5:
                return True
        started = lock.get("started", 0)
        stale = not isinstance(started, int | float) or time.time() - started > STALE_SECONDS
        if lock.get("host") == socket.gethostname() and not _alive(lock.get("pid")):
            stale = True
        if stale:
            lock_file.unlink(missing_ok=True)
            return False
        return True

    def _launch(self, model: str, version: str, layer: str, settings: Settings, lock_file: Path,
                progress_file: Path, log_file: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:  # another worker got there first
            return
        os.close(descriptor)
        progress_file.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "app.jobs.features_worker", "--model-store", str(self.model_store),
            "--model", model, "--version", version, "--layer", layer, "--settings", json.dumps(asdict(settings)),
            "--state-dir", str(self.folder.parent),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        try:
            with open(log_file, "ab") as log:
                process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        except OSError:
            lock_file.unlink(missing_ok=True)
            raise
        write_json(lock_file, {"pid": process.pid, "host": socket.gethostname(), "started": time.time()})
        logger.info("feature visualisation of %s/%s started (pid %s)", model, layer, process.pid)
        threading.Thread(target=self._reap, args=(process, lock_file, progress_file), daemon=True).start()

    @staticmethod
    def _reap(process: subprocess.Popen, lock_file: Path, progress_file: Path) -> None:
        """Wait for the job (no zombie); if it died without saying so, record the failure and free the lock."""
        code = process.wait()
        if code != 0:
            progress = read_json(progress_file) or {}
            if "failed" not in progress:
                write_json(progress_file, {**progress, "failed": time.time(),
                                           "error": f"the visualisation process exited with code {code}"})
        lock = read_json(lock_file)
        if lock is not None and lock.get("pid") == process.pid:
            lock_file.unlink(missing_ok=True)
