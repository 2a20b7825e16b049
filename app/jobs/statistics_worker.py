"""Compute one whole-test-set statistic of a layer and store it (see :mod:`app.jobs.statistics`).

Started as ``python -m app.jobs.statistics_worker --model-store DIR --state-dir DIR --model NAME --version V
--layer L --kind K`` by :class:`~app.jobs.statistics.StatisticsJobs`: a fresh interpreter, so TensorFlow is never
inherited through a fork. It computes with the same functions a request uses (the result is the same), reading
the test set batch by batch, and writes its progress after every batch.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np

from app.config import Settings as AppSettings
from app.core.errors import ExplorerError, TooLarge
from app.core.limits import format_bytes
from app.core.statistics import KINDS, StatisticsCache, images_read
from app.core.store import LoadedModel, ModelStore
from app.jobs.background import job_outcome, run_in_job_process, write_json
from app.jobs.memory_limit import default_limit
from app.jobs.statistics import StatisticsJobs

logger = logging.getLogger(__name__)

# What an idle TensorFlow process holds (its libraries and thread pools), beside a job's own arrays.
TENSORFLOW_BYTES = 768 * 2**20


def check_job_memory(loaded: LoadedModel, limit: int) -> None:
    """Refuse, before any pass, a job whose model weights, one batch of images and their outputs would pass the
    process's memory ``limit`` (less what TensorFlow itself takes, :data:`TENSORFLOW_BYTES`).

    Raises:
        TooLarge: saying what the job needs and the limit.
    """
    engine = loaded.engine
    batch = engine.largest_batch()
    image_bytes = int(np.prod(engine.images.shape[1:])) * 4
    needed = loaded.model.count_params() * 4 + batch * (engine.image_output_bytes + image_bytes)
    if needed + TENSORFLOW_BYTES > limit:
        raise TooLarge(f"a pass over the test set needs ~{format_bytes(needed + TENSORFLOW_BYTES)} (batches of "
                       f"{batch} images), more than the job memory limit of {format_bytes(limit)} (TRAINING_MEMORY_MB)")


def run(model_store: Path, state_dir: Path, model: str, version: str, layer: str, kind: str) -> None:
    """Compute statistic ``kind`` of ``layer`` of ``model`` (at ``version``) and store it.

    Raises:
        ExplorerError: the model changed since the request, or it has no such layer.
    """
    jobs = StatisticsJobs(state_dir, model_store)
    result_file = jobs.path(model, version, layer, kind)
    progress_file, lock_file, _ = jobs.job_files(result_file)
    started = time.time()

    def report(done: int, total: int, stage: str) -> None:
        write_json(progress_file, {"done": done, "total": total, "stage": stage, "started": started})

    with job_outcome(progress_file, lock_file):
        settings = AppSettings.from_env()  # the server's limits: a model it admits opens here too
        store = ModelStore(model_store, limits=settings.model_limits, test_set_max_bytes=settings.test_set_max_bytes)
        loaded = store.get(model)
        if loaded.version != version:
            raise ExplorerError(f"model {model!r} changed while its statistics were requested; ask again")
        name = layer if kind == "predictions" else loaded.engine.layer(layer).name
        check_job_memory(loaded, settings.training_memory_bytes or default_limit())
        total = images_read(kind, loaded.engine.n_images)
        count = [0]
        report(0, total, KINDS[kind])

        def counted(images: int) -> None:
            count[0] += images
            report(min(count[0], total), total, f"{KINDS[kind]}: {count[0]:,} of {total:,} images read")

        loaded.engine.batch_listener = counted
        # computed as a request computes it, stored by the same cache (with the class means of the distances)
        StatisticsCache(shared=jobs, in_request_flops=math.inf).of_kind(loaded, name, kind)
        report(total, total, "done")
        logger.info("%s of %s/%s over %d images in %.1f s", kind, model, name, total, time.time() - started)


def run_command(argv: list[str]) -> None:
    """Run the job the command line above names (in this process: a Celery worker runs it so)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--model-store", "--state-dir", "--model", "--version", "--layer"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--kind", required=True, choices=sorted(KINDS))
    args = parser.parse_args(argv)
    run(Path(args.model_store), Path(args.state_dir), args.model, args.version, args.layer, args.kind)


def main(argv: list[str] | None = None) -> None:
    """The command line above, in a process of its own (see :func:`~app.jobs.background.run_in_job_process`)."""
    run_in_job_process(run_command, argv)


if __name__ == "__main__":
    main()
