"""Whole-layer work as background processes, computed once and shared through ``STATE_DIR``.

Work over a whole layer (every unit's feature visualisation, statistics over the whole test set) takes seconds to
minutes: never in a web worker's thread. The first request for a result (from any worker, any user) launches one
fresh ``python -m <worker module>`` process (never a fork: TensorFlow hangs in a forked child of a process that has
run it), guarded by a lock file created with ``O_EXCL``, so two workers asking at once start one job and the second
request joins the first. The job writes its progress next to the result, and the result atomically (temporary file,
rename): a job killed halfway leaves no half-written result, and every worker reads the result from then on, across
restarts.

Where a job runs follows the instance's job engine (:mod:`app.jobs.engines`): a process on the web worker's machine
(:class:`ProcessLauncher`), or, with ``REDIS_URL`` set, a Celery worker's ``layers`` queue (:class:`CeleryLauncher`;
the task runs the same worker module's command in the Celery worker). Layer jobs are not training jobs: a layer's
result must not wait behind (or block) an hour of training on the same queue, and needs no stop, probe or job list.
A lock held by a process that died (or older than :data:`STALE_SECONDS`) is taken over; a failure is shown for
:data:`RETRY_AFTER_SECONDS`, then a new request tries again.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from app.config import PROJECT_ROOT, Settings
from app.core.errors import ExplorerError, Unavailable
from app.jobs.celery_app import LAYER_QUEUE, LAYER_TASK_NAME, make_celery
from app.jobs.memory_limit import apply_memory_limit, default_limit

logger = logging.getLogger(__name__)

STALE_SECONDS = 1800  # no job of a model the explorer can show takes this long (mnist-cnn's largest: ~15 s)
RETRY_AFTER_SECONDS = 60
# Jobs of one kind running at once per instance: each is a process with its own TensorFlow (~0.5-0.8 GB) that uses
# every core it gets, so a viewer opening one layer after another queues them instead of starting one process each.
MAX_RUNNING = 1


@dataclass(frozen=True)
class LayerJob:
    """Where a background job stands.

    Attributes:
        status: ``done``, ``running``, ``queued`` (waiting for another job of its kind) or ``failed``.
        result: the result when done.
        done, total: work done so far and in all, in the job's own steps (optimisation steps, batches of test
            images); 0, 0 while the process starts.
        stage: what the job is doing now, in words ("64 units at once", "class means: batch 3 of 157").
        error: why it failed.
        started: when the job started (seconds since the epoch), 0 when unknown: the estimate of time left.
    """

    status: str
    result: Any = None
    done: int = 0
    total: int = 0
    stage: str = ""
    error: str = ""
    started: float = 0.0

    @property
    def fraction(self) -> float:
        """Share done, 0..1."""
        return 1.0 if self.status == "done" else (self.done / self.total if self.total else 0.0)

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until done at the pace so far, or None before a first step is done."""
        if self.status != "running" or not self.started or not self.done or not self.total:
            return None
        elapsed = (time.time() if now is None else now) - self.started
        return max(0.0, elapsed * (self.total - self.done) / self.done)

    def progress(self) -> dict[str, Any]:
        """Plain JSON for the API and the page: status, done, total, fraction, stage, error, seconds_left."""
        data = asdict(self)
        data.pop("result")
        data.pop("started")
        data["fraction"] = round(self.fraction, 4)
        left = self.seconds_left()
        data["seconds_left"] = None if left is None else round(left, 1)
        return data


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file, never half of one)."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


@contextmanager
def job_outcome(progress_file: Path, lock_file: Path) -> Iterator[None]:
    """The body of a job's process: the lock names this process (a Celery worker's too, so that its death is seen
    on its machine); an exception is written to its progress file as its failure (a core error's message, anything
    else only by its type) and raised again; the lock is freed however the body ends."""
    try:
        write_json(lock_file, own_lock())
        yield
    except Exception as exc:
        write_json(progress_file, {"failed": time.time(), "error": str(exc) if isinstance(exc, ExplorerError)
                                   else f"internal error: {type(exc).__name__}"})
        raise
    finally:
        lock_file.unlink(missing_ok=True)


# A job process's priority below the web workers': a page stays responsive while a layer is computed.
NICENESS = 5


def run_in_job_process(run_command: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """The body of a worker module's ``main``: log to stderr, lower this process's priority, cap its memory at the
    job memory limit (``TRAINING_MEMORY_MB``), then run ``run_command`` on ``argv`` (default: this command line)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.nice(NICENESS)
    apply_memory_limit(Settings.from_env().training_memory_bytes or default_limit())
    run_command(sys.argv[1:] if argv is None else argv)


def own_lock() -> dict[str, Any]:
    """The lock contents naming this process: pid, host and start time."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}


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


class ProcessLauncher:
    """Starts each job as a fresh ``python -m <module>`` process on this machine (the embedded engine)."""

    def start(self, command: list[str], lock_file: Path, progress_file: Path, log_file: Path) -> None:
        """Start ``python -m`` ``command`` with its output in ``log_file``; the lock names the process."""
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        with open(log_file, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", *command], cwd=PROJECT_ROOT, env=env,
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        write_json(lock_file, {"pid": process.pid, "host": socket.gethostname(), "started": time.time()})
        threading.Thread(target=self._reap, args=(process, lock_file, progress_file), daemon=True).start()

    @staticmethod
    def _reap(process: subprocess.Popen, lock_file: Path, progress_file: Path) -> None:
        """Wait for the job (no zombie); if it died without saying so, record the failure and free the lock."""
        code = process.wait()
        if code != 0:
            progress = read_json(progress_file) or {}
            if "failed" not in progress:
                write_json(progress_file, {**progress, "failed": time.time(),
                                           "error": f"the process exited with code {code}"})
        lock = read_json(lock_file)
        if lock is not None and lock.get("pid") == process.pid:
            lock_file.unlink(missing_ok=True)


class CeleryLauncher:
    """Sends each job to the ``layers`` queue of the instance's Celery workers (``REDIS_URL`` set), which run the
    same command in their own process; the state folder must be the one the web servers use (a shared volume).

    Args:
        redis_url: the broker.
    """

    def __init__(self, redis_url: str) -> None:
        self.celery = make_celery(redis_url)

    def start(self, command: list[str], lock_file: Path, progress_file: Path, log_file: Path) -> None:
        """Queue ``command``; until a worker takes it, the lock holds only its time and the stage says it waits."""
        now = time.time()
        write_json(lock_file, {"queued": True, "started": now})
        write_json(progress_file, {"stage": "waiting for a Celery worker", "started": now})
        try:
            self.celery.send_task(LAYER_TASK_NAME, args=[command[0], command[1:]], queue=LAYER_QUEUE)
        except Exception as exc:  # noqa: BLE001 - kombu raises its own and the socket's errors
            progress_file.unlink(missing_ok=True)
            raise Unavailable(f"cannot reach the job queue: {type(exc).__name__}") from exc


class BackgroundJobs:
    """Launches and reads the background jobs of one kind, each result a file in ``STATE_DIR/<folder>``.

    Subclasses name the folder, the worker module (``python -m`` it, with the arguments :meth:`status` is given)
    and what their results are, in words.

    Args:
        state_dir: the shared state folder.
        model_store: the model store folder the worker opens the model from.
        launcher: where jobs run (:class:`ProcessLauncher`, the default, or :class:`CeleryLauncher`).
    """

    folder_name: ClassVar[str]
    worker_module: ClassVar[str]
    what: ClassVar[str]

    def __init__(self, state_dir: Path, model_store: Path,
                 launcher: ProcessLauncher | CeleryLauncher | None = None) -> None:
        self.folder = Path(state_dir) / self.folder_name
        self.model_store = Path(model_store)
        self.launcher = launcher or ProcessLauncher()

    @staticmethod
    def job_files(result: Path) -> tuple[Path, Path, Path]:
        """``(progress, lock, log)`` files of the job whose result is ``result``."""
        stem = result.with_suffix("")
        return stem.with_suffix(".progress.json"), stem.with_suffix(".lock"), stem.with_suffix(".log")

    def status(self, result_file: Path, load: Callable[[Path], Any], arguments: list[str],
               finished: Callable[[Any], int] = lambda result: 1) -> LayerJob:
        """The job's result if stored (read with ``load``, None when absent or unreadable); else its progress,
        launching the worker with ``arguments`` if none runs (or the last one failed more than
        :data:`RETRY_AFTER_SECONDS` ago). ``finished`` gives a stored result's steps (done and total)."""
        progress_file, lock_file, log_file = self.job_files(result_file)
        result = load(result_file)
        if result is not None:
            steps = finished(result)
            return LayerJob("done", result, steps, steps, "done")
        progress = read_json(progress_file) or {}
        failed_at = progress.get("failed")
        if isinstance(failed_at, int | float) and time.time() - failed_at < RETRY_AFTER_SECONDS:
            return LayerJob("failed", error=str(progress.get("error", ""))[:500])
        if not self._holds_live_lock(lock_file):
            if self.running() >= MAX_RUNNING:
                return LayerJob("queued", stage=f"waiting for another {self.what} to finish")
            self._launch(arguments, lock_file, progress_file, log_file)
            progress = {}
        started = progress.get("started", 0)
        return LayerJob("running", None, int(progress.get("done", 0) or 0), int(progress.get("total", 0) or 0),
                        str(progress.get("stage", "")),
                        started=float(started) if isinstance(started, int | float) else 0.0)

    def running(self) -> int:
        """How many jobs of this kind hold a live lock now (stale locks are removed on the way)."""
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

    def _launch(self, arguments: list[str], lock_file: Path, progress_file: Path, log_file: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:  # another worker got there first
            return
        os.close(descriptor)
        progress_file.unlink(missing_ok=True)
        command = [self.worker_module, "--model-store", str(self.model_store), "--state-dir", str(self.folder.parent),
                   *arguments]
        try:
            self.launcher.start(command, lock_file, progress_file, log_file)
        except Exception:
            lock_file.unlink(missing_ok=True)
            raise
        logger.info("%s started: %s", self.what, " ".join(arguments))
