"""Run one training job: train with an observer that streams to the job store, then save the model atomically.

Started as ``python -m app.jobs.worker JOB_ID --store sqlite:/path/jobs.sqlite3 --model-store DIR`` by the
embedded runner (a fresh interpreter: TensorFlow is never inherited through a fork), called inside a Celery task
by the Celery engine, and in-process by ``python -m app.cli``. All three go through :func:`run_job`.

What reaches the store, and when:
- every epoch, synchronously at its end: the metrics row, then the probe record (viewers see it at their next poll);
- every ``pulse`` seconds, from a background thread: heartbeat, batches done and ETA (nothing is written per
  batch, so the training loop pays only a couple of attribute assignments); the same thread reads the stop flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.core.datasets import Dataset, load_dataset
from app.core.errors import ExplorerError, InvalidInput
from app.core.limits import check_room
from app.core.store import ModelExists, ModelStore
from app.core.training import ConfigError, TrainingObserver, inference_copy, parse_config, train
from app.core.training_cost import refuse_over_budget
from app.core.user_images import UserImageStore, provided_image
from app.jobs.engines import open_store
from app.jobs.memory_limit import apply_memory_limit, default_limit, is_out_of_memory
from app.jobs.records import JobNotFound
from app.jobs.store import JobStore

logger = logging.getLogger(__name__)

PULSE_SECONDS = 0.5
NICENESS = 5  # of the embedded runner's training process (see main)
RECOVERY_FOLDER = "recovered"
SAVE_MARGIN_BYTES = 10 * 10**6  # meta.json, the archive's overhead, and room to spare


class StoreObserver(TrainingObserver):
    """Streams a run to the job store; a :class:`Pulse` thread writes progress and relays stop requests.

    Args:
        store, job_id: where to write.
        extra: another observer to forward every hook to (the CLI's progress bar).
        user_images: where a watched image ``u:<id>`` is read from (None: such images cannot be watched).
    """

    def __init__(self, store: JobStore, job_id: str, extra: TrainingObserver | None = None,
                 user_images: UserImageStore | None = None) -> None:
        self.store = store
        self.job_id = job_id
        self.extra = extra
        self.user_images = user_images
        self.stop_event = threading.Event()
        self.epochs_total = 0
        self.batches_per_epoch = 0
        self.position = (0, 0)  # (epoch, batch) of the last finished batch; read by the pulse thread
        self.started_at = time.perf_counter()
        self.dataset = None  # set once loaded: a probe change needs the new image's pixels for the viewers
        self.requested: dict[str, Any] = {}  # the job's probe_request, refreshed by the pulse thread
        self.applied: dict[str, Any] = {}
        # user images' inputs made for this run's test set, by u:<id>: the same dict the training reads
        self.probe_inputs: dict[str, np.ndarray] = {}

    def on_train_begin(self, epochs: int, batches_per_epoch: int) -> None:
        self.epochs_total, self.batches_per_epoch = epochs, batches_per_epoch
        self.started_at = time.perf_counter()
        self.store.update(self.job_id, epochs_total=epochs, batches_per_epoch=batches_per_epoch, epoch=0, batch=0)
        if self.extra:
            self.extra.on_train_begin(epochs, batches_per_epoch)

    def on_batch_end(self, epoch: int, batch: int, batches_per_epoch: int) -> None:
        self.position = (epoch, batch)
        if self.extra:
            self.extra.on_batch_end(epoch, batch, batches_per_epoch)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], probe: dict[str, Any] | None) -> None:
        # recorded_at lets a viewer (and the browser test) measure how long an epoch takes to reach a page
        self.store.add_epoch(self.job_id, {"epoch": epoch, **metrics, "recorded_at": round(time.time(), 3)})
        if probe is not None:
            self.store.add_probe(
                self.job_id, epoch, probe["layer"], probe["image"], probe["activations"], probe["probabilities"]
            )
        if self.extra:
            self.extra.on_epoch_end(epoch, metrics, probe)

    def should_stop(self) -> bool:
        return self.stop_event.is_set() or bool(self.extra and self.extra.should_stop())

    def probe_target(self) -> tuple[int | str, str] | None:
        """A viewer's new probe choice, once; the viewers' copy of the probe image is updated to match. A user
        image (``u:<id>``) is made into an input for this run's test set first; one that cannot be is a
        ``probe_warning`` and the probe stays as it was."""
        request = self.requested
        if not request or request == self.applied:
            return None
        self.applied = request
        image = request["image"] if isinstance(request["image"], str) else int(request["image"])
        if self.dataset is not None:
            info = self.store.get(self.job_id).info
            if isinstance(image, str) and image not in self.probe_inputs:
                try:
                    self.probe_inputs[image] = user_probe_input(self.user_images, image, self.dataset)
                except ExplorerError as exc:
                    self.store.update(self.job_id, info={**info, "probe_warning": str(exc)})
                    return None
            self.store.update(self.job_id, info=probe_info(self.dataset, image, info, self.probe_inputs))
        return image, str(request["layer"])

    def progress(self) -> dict[str, Any]:
        """Batches done and the ETA, from the pace since training began."""
        epoch, batch = self.position
        done = max(epoch - 1, 0) * self.batches_per_epoch + batch if epoch else 0
        total = self.epochs_total * self.batches_per_epoch
        elapsed = time.perf_counter() - self.started_at
        eta = elapsed / done * (total - done) if done else None
        return {"epoch": epoch, "batch": batch, "eta_seconds": None if eta is None else round(eta, 1)}


class Pulse(threading.Thread):
    """Every ``interval`` seconds: heartbeat + progress to the store; a stop request (or the job being ended by
    someone else) sets the observer's stop event."""

    def __init__(self, store: JobStore, job_id: str, observer: StoreObserver, interval: float = PULSE_SECONDS):
        super().__init__(name=f"pulse-{job_id}", daemon=True)
        self.store, self.job_id, self.observer, self.interval = store, job_id, observer, interval
        self.done = threading.Event()

    def run(self) -> None:
        last = None
        while not self.done.wait(self.interval):
            try:
                progress = self.observer.progress() if self.observer.batches_per_epoch else {}
                values = {"heartbeat": time.time(), **(progress if progress != last else {})}
                last = progress
                self.store.update(self.job_id, **values)
                job = self.store.get(self.job_id)
                self.observer.requested = job.probe_request
                if job.stop_requested or not job.active:
                    self.observer.stop_event.set()
            except Exception:  # a store hiccup must not kill the heartbeat; the next beat retries
                logger.exception("job %s: heartbeat failed", self.job_id)

    def stop(self) -> None:
        """End the thread (after at most one more beat)."""
        self.done.set()
        self.join(timeout=5)


def probe_info(dataset, index: int | str | None, info: dict[str, Any] | None = None,
               probe_inputs: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """``info`` updated for probe image ``index`` (a test image, or a user image's ``u:<id>`` whose input is in
    ``probe_inputs``): ``probe`` (the current one: image, label (None for a user image), pixels) and
    ``probe_images`` (every image probed in this run, by index or id, so earlier epochs keep their picture), or a
    ``probe_warning`` if there is no such image."""
    info = {key: value for key, value in (info or {}).items() if key not in ("probe", "probe_warning")}
    if index is None:
        return info
    if isinstance(index, str):
        if index not in (probe_inputs or {}):
            return info | {"probe_warning": f"probe image {index} has no input for this run"}
        image, label = np.asarray(probe_inputs[index], dtype=np.float32), None
    elif not 0 <= index < len(dataset.x_test):
        return info | {"probe_warning": f"probe image {index} is beyond the {len(dataset.x_test)} test images"}
    else:
        image, label = np.asarray(dataset.x_test[index], dtype=np.float32), int(dataset.y_test[index])
    probe = {"image": index, "label": label, "pixels": np.round(image, 3).tolist()}
    return info | {"probe": probe, "probe_images": {**info.get("probe_images", {}), str(index): probe}}


def _run_info(config, dataset, probe_inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """What viewers need besides the records: class names, sizes, the probe image itself and its label."""
    sizes = {"class_names": list(dataset.class_names), "train_size": len(dataset.x_train),
             "test_size": len(dataset.x_test)}
    return probe_info(dataset, config.probe_image, sizes, probe_inputs)


@dataclass(frozen=True)
class _RunTestSet:
    """What :func:`app.core.user_images.provided_image` reads of a model, for the model this run trains: no stored
    image was made for it (an empty name is never a model's), so an image is preprocessed again from its original
    with the recipe the run's test images call for (their size, channels and value range)."""

    images: np.ndarray
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    key: None = None  # no model version: its recipe is computed, not cached


def user_probe_input(images: UserImageStore | None, reference: str, dataset: Dataset) -> np.ndarray:
    """The input [H, W, C] of drawn or uploaded image ``reference`` for the model trained on ``dataset``.

    Raises:
        InvalidInput: a malformed id, or an image whose input does not fit the model's input shape.
        NotFound: no such image (never made on this instance, or evicted).
    """
    if images is None:
        raise InvalidInput(f"image {reference} cannot be watched: this run reads no drawn or uploaded images")
    pixels = provided_image(images, _RunTestSet(dataset.x_test), reference).pixels
    if pixels.shape != dataset.x_test.shape[1:]:
        raise InvalidInput(f"image {reference} becomes an input of shape {pixels.shape}, and the model of this run "
                           f"takes {tuple(dataset.x_test.shape[1:])}")
    return pixels


def run_job(job_id: str, store: JobStore, settings: Settings, extra: TrainingObserver | None = None) -> str:
    """Run the queued job ``job_id`` to its end and record the outcome in ``store``.

    Args:
        job_id: a queued job of ``store``.
        store: the job store (progress, metrics, probe records, outcome).
        settings: where datasets are read from, where the model is saved (atomically: temp folder, then rename),
            and where a trained model the store could not take is kept (``STATE_DIR/recovered``).
        extra: an observer that also receives every hook (the CLI's progress bar).

    Returns:
        The job's final status (or its current one if another worker had already taken it).
    """
    if not store.claim(job_id, os.getpid()):
        status = store.get(job_id).status
        logger.warning("job %s is %s, not queued: not running it", job_id, status)
        return status
    observer = StoreObserver(store, job_id, extra, UserImageStore(settings.user_images_dir, settings.user_images_kept))
    pulse = Pulse(store, job_id, observer)
    pulse.start()
    try:
        status, error, saved = _train_and_save(job_id, store, settings, observer)
    except ConfigError as exc:
        status, error, saved = "failed", "; ".join(exc.errors), False
    except Exception as exc:  # every failure must reach the viewers, with its message
        logger.exception("job %s failed", job_id)
        status, saved = "failed", False
        error = f"out of memory: {exc}" if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
    finally:
        pulse.stop()
    if not store.finish(job_id, status, error=error, saved=saved):
        logger.warning("job %s had already been ended by someone else", job_id)
    logger.info("job %s %s%s", job_id, status, f": {error}" if error else "")
    return store.get(job_id).status


def _train_and_save(job_id: str, store: JobStore, settings: Settings, observer: StoreObserver):
    job = store.get(job_id)
    config = parse_config(job.config)
    dataset = load_dataset(config.dataset, settings.data_sources).subset(config.max_train, config.max_test)
    cost = refuse_over_budget(config, dataset.x_train.shape[1:], len(dataset.class_names), len(dataset.x_train))
    # Checked before hours of training, not after: the weights, their copy being written, and the test set.
    check_room(settings.model_store, cost.parameter_bytes + dataset.x_test.nbytes + SAVE_MARGIN_BYTES)
    if isinstance(config.probe_image, str):  # refused before training, with the reason, not after an epoch
        try:
            observer.probe_inputs[config.probe_image] = user_probe_input(observer.user_images, config.probe_image,
                                                                         dataset)
        except ExplorerError as exc:
            raise ConfigError([f"probe image {config.probe_image} cannot be watched in this run: {exc}"]) from None
    store.update(job_id, info=_run_info(config, dataset, observer.probe_inputs))
    observer.dataset = dataset
    result = train(config, observer, dataset, probe_inputs=observer.probe_inputs)
    job = store.get(job_id)
    if not job.active:  # ended by someone else (reaped as dead): do not resurrect it with a save
        return job.status, job.error, False
    if result.stopped and not job.save_partial:
        return "stopped", None, False
    meta = result.meta(config)
    meta["job_id"] = job_id
    outcome = "stopped" if result.stopped else "succeeded"
    model = inference_copy(result.model)
    try:
        name = save_under_free_name(ModelStore(settings.model_store), config.name, model, result.dataset, meta)
    except OSError as exc:
        return "failed", _keep_for_recovery(job_id, settings, config.name, model, result.dataset, meta, exc), False
    if name != config.name:
        store.update(job_id, model=name)
        logger.warning("job %s: %r was taken during training; saved as %r", job_id, config.name, name)
    return outcome, None, True


def save_under_free_name(models: ModelStore, name: str, model, dataset, meta: dict[str, Any]) -> str:
    """Save under ``name``, or under the first free ``name-2``, ``name-3``... if a model of that name appeared
    while this one trained; returns the name used."""
    for _attempt in range(5):
        chosen = models.free_name(name)
        try:
            models.save(chosen, model, dataset.x_test, dataset.y_test, meta)
            return chosen
        except ModelExists:  # taken between the look and the rename: look again
            continue
    raise ModelExists(f"could not find a free name for {name!r}")


def _keep_for_recovery(job_id: str, settings: Settings, name: str, model, dataset, meta, error: OSError) -> str:
    """Save a trained model the store refused (read-only, full) under ``STATE_DIR/recovered``; the job's error."""
    reason = f"the model store refused the model ({error.strerror or error})"
    recovered = ModelStore(Path(settings.state_dir) / RECOVERY_FOLDER)
    try:
        folder = recovered.save(recovered.free_name(f"{name}-{job_id}"), model, dataset.x_test, dataset.y_test, meta)
    except OSError as second:
        return f"{reason}, and keeping it under {recovered.root} failed too ({second.strerror or second})"
    return f"{reason}; the trained model was kept in {folder}: move that folder into the model store to open it"


def limit_memory(settings: Settings) -> None:
    """Cap this process's memory (``TRAINING_MEMORY_MB``, default :func:`default_limit`): a model too large for the
    machine fails its own job within seconds instead of swapping the machine that serves everyone."""
    apply_memory_limit(settings.training_memory_bytes or default_limit())


def main(argv: list[str] | None = None) -> int:
    """``python -m app.jobs.worker JOB_ID --store URL --model-store DIR``: run one job; exit 0 unless it failed."""
    parser = argparse.ArgumentParser(description="Run one queued training job.")
    parser.add_argument("job_id")
    parser.add_argument("--store", required=True, help="job store address: sqlite:PATH or redis://...")
    parser.add_argument("--model-store", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Training takes every core it can get; a lower priority keeps the web server that launched it responsive
    # (pages of every viewer poll it), and costs the training nothing on an otherwise idle machine.
    os.nice(NICENESS)
    settings = dataclasses.replace(Settings.from_env(), model_store=args.model_store)
    limit_memory(settings)
    store = open_store(args.store)
    try:
        status = run_job(args.job_id, store, settings)
    except JobNotFound as exc:
        logger.error("%s", exc)
        return 2
    return 1 if status == "failed" else 0


if __name__ == "__main__":
    raise SystemExit(main())
