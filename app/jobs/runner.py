"""Job runners: start a training job outside the web request, one small interface, two engines.

- :class:`EmbeddedRunner` (default): a fresh ``python -m app.jobs.worker`` process per job. Never a fork of the
  web process: TensorFlow hangs in a forked child of a process that has run it (measured: a forked child trained
  nothing in 60 s, a fresh process trained the same model in 3-4 s). Nothing to install or start; state goes to
  the SQLite job store every web worker reads.
- :class:`CeleryRunner` (``REDIS_URL`` set): the job is sent to a Celery worker (``--pool=solo``) through Redis;
  state goes to the Redis job store. For instances that outgrow one machine.

Both validate the configuration first (:class:`~app.core.training.ConfigError` lists every problem) and refuse a
second job while one is active (:class:`~app.jobs.records.JobRunning`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from app.core.datasets import NAMED_SHAPES, DatasetError, DataSources, check_dataset
from app.core.errors import ExplorerError
from app.core.model_files import validate_name
from app.core.parsing import shown
from app.core.store import ModelExists
from app.core.training import MAX_TRAIN_IMAGES, ConfigError, conv_layer_names, parse_config
from app.core.training_cost import refuse_over_budget
from app.core.user_images import UserImageStore, is_user_image, names_user_image
from app.jobs.celery_app import TASK_NAME, make_celery
from app.jobs.memory_limit import CRASHED_AT_LIMIT, OUT_OF_MEMORY
from app.jobs.records import Job
from app.jobs.store import JobStore

logger = logging.getLogger(__name__)

LOG_TAIL_CHARS = 1500


class JobRunner(ABC):
    """Starts and stops training jobs recorded in :attr:`store`.

    Args:
        store: the job store every viewer reads.
        model_store: the model store folder finished models are saved to.
        sources: where datasets are read from (a dataset given by path must lie in its data folder).
        user_images: where a probe image ``u:<id>`` must exist (without it, the worker's own check remains).
    """

    engine = ""

    def __init__(self, store: JobStore, model_store: Path, sources: DataSources,
                 user_images: UserImageStore | None = None) -> None:
        self.store = store
        self.model_store = Path(model_store)
        self.sources = sources
        self.user_images = user_images

    def _user_image_problems(self, image: str) -> list[str]:
        """Why ``image`` cannot be a probe image (a malformed id, or none on this instance), or nothing."""
        if not is_user_image(image):
            return [f"probe_image {shown(image)} is not an image id (u: and 20 hex digits)"]
        try:
            if self.user_images is not None:
                self.user_images.get(image)
        except ExplorerError as exc:
            return [f"probe_image: {exc}"]
        return []

    def submit(self, raw_config: dict[str, Any], engine: str | None = None, started_by: str | None = None) -> Job:
        """Validate ``raw_config`` and record it as a queued job of user ``started_by``, without launching it (the
        CLI runs it itself).

        Raises:
            ConfigError: the configuration is invalid or too large to train here (every problem listed), or its
                dataset is neither a named one nor a file or folder in the data folder.
            ModelExists: a model of that name is already in the store.
            JobRunning: another job is active.
        """
        config = parse_config(raw_config)
        if isinstance(config.probe_image, str) and (problems := self._user_image_problems(config.probe_image)):
            raise ConfigError(problems)
        try:
            check_dataset(config.dataset, self.sources)
        except DatasetError as exc:
            raise ConfigError([str(exc)]) from exc
        if config.dataset in NAMED_SHAPES:  # a dataset given by path is checked by the worker once loaded
            input_shape, n_classes, n_train = NAMED_SHAPES[config.dataset]
            refuse_over_budget(config, input_shape, n_classes, min(n_train, config.max_train or n_train))
        if (self.model_store / validate_name(config.name)).exists():
            raise ModelExists(f"a model named {config.name!r} already exists; choose another name")
        return self.store.create(config.to_dict(), engine=engine or self.engine, started_by=started_by)

    def start(self, raw_config: dict[str, Any], started_by: str | None = None) -> Job:
        """Validate ``raw_config``, record a queued job of user ``started_by`` and launch it on this engine's worker.

        Returns:
            The queued job.

        Raises:
            ConfigError, ModelExists, JobRunning: see :meth:`submit`.
        """
        job = self.submit(raw_config, started_by=started_by)
        try:
            self._launch(job)
        except Exception as exc:
            self.store.finish(job.id, "failed", error=f"could not start the training job: {exc}")
            raise
        logger.info("job %s queued on the %s engine: model %s, started by %s", job.id, self.engine, job.model,
                    started_by or "an anonymous user")
        return job

    def stop(self, job_id: str, save_partial: bool = False) -> Job:
        """Ask job ``job_id`` to stop at its next batch; keep the partial model only if ``save_partial``."""
        return self.store.request_stop(job_id, save_partial)

    def change_probe(self, job_id: str, image: Any = None, layer: Any = None) -> Job:
        """During a run, record test image ``image`` (or the user image of id ``u:<id>``) at ``layer`` from the next
        epoch end on (None keeps the current choice of that part).

        Raises:
            ConfigError: unknown layer for this architecture, or an image outside the run's test set.
            JobNotFound, JobNotActive.
        """
        job = self.store.get(job_id)
        current = job.probe_request or {"image": job.config.get("probe_image"), "layer": job.config.get("probe_layer")}
        image = current["image"] if image is None else image
        names = conv_layer_names(parse_config(job.config))
        layer = layer or current["layer"] or names[0]
        problems = []
        if layer not in names:
            problems.append(f"layer must be one of {', '.join(names)}, got {shown(layer)}")
        size = job.info.get("test_size") or job.config.get("max_test") or MAX_TRAIN_IMAGES
        if names_user_image(image):
            problems.extend(self._user_image_problems(image))
        elif isinstance(image, bool) or not isinstance(image, int) or not 0 <= image < size:
            problems.append(f"the probe image must be a test-image index from 0 to {size - 1} or a u: image id, "
                            f"got {shown(image)}")
        if problems:
            raise ConfigError(problems)
        return self.store.request_probe(job_id, image, layer)

    @abstractmethod
    def _launch(self, job: Job) -> None:
        """Hand the queued ``job`` to a worker."""


class EmbeddedRunner(JobRunner):
    """Runs each job in a fresh Python process on this machine (``python -m app.jobs.worker``).

    Args:
        log_dir: where each job's process output goes (``<job id>.log``); its tail is the error if it crashes.
    """

    engine = "embedded"

    def __init__(self, store: JobStore, model_store: Path, sources: DataSources, log_dir: Path,
                 user_images: UserImageStore | None = None) -> None:
        super().__init__(store, model_store, sources, user_images)
        self.log_dir = Path(log_dir)


    def _launch(self, job: Job) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{job.id}.log"
        command = [
            sys.executable, "-m", "app.jobs.worker", job.id,
            "--store", self.store.url, "--model-store", str(self.model_store),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        with open(log_path, "ab") as log:
            # A new session: a Ctrl-C or a gunicorn worker recycle does not take the training down with it.
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.store.update(job.id, pid=process.pid)
        # Reap the child (no zombie) and, if it died without recording an outcome, record one with its last words.
        threading.Thread(target=self._watch, args=(job.id, process, log_path), daemon=True).start()

    def _watch(self, job_id: str, process: subprocess.Popen, log_path: Path) -> None:
        try:
            code: int | str = process.wait()
        except ChildProcessError:  # reaped by someone else's waitpid(-1); the outcome is still checked below
            code = "unknown"
        try:
            if self.store.get(job_id).active:
                tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:].strip()
                error = f"the training process exited with code {code}" + (f": {tail}" if tail else "")
                if code in CRASHED_AT_LIMIT or OUT_OF_MEMORY.search(tail):  # an allocation past the memory limit
                    error = f"out of memory: the run needs more than the training memory limit; {error}"
                self.store.finish(job_id, "failed", error=error)
        except Exception:
            logger.exception("job %s: could not record the end of its process", job_id)


class CeleryRunner(JobRunner):
    """Sends each job to a Celery worker through Redis (``celery -A app.jobs.celery_worker worker --pool=solo``).

    Args:
        redis_url: the broker.
    """

    engine = "celery"

    def __init__(self, store: JobStore, model_store: Path, sources: DataSources, redis_url: str,
                 user_images: UserImageStore | None = None) -> None:
        super().__init__(store, model_store, sources, user_images)
        self.celery = make_celery(redis_url)

    def _launch(self, job: Job) -> None:
        self.celery.send_task(TASK_NAME, args=[job.id])
