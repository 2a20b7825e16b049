"""Compute one layer's feature visualisation and store it (see :mod:`app.jobs.features`).

Started as ``python -m app.jobs.features_worker --model-store DIR --model NAME --version V --layer L
--settings JSON --state-dir DIR`` by :class:`~app.jobs.features.FeatureJobs`: a fresh interpreter, so TensorFlow is
never inherited through a fork. Progress goes to the job's ``.progress.json`` after every segment of steps
(:data:`~app.core.features.SEGMENT_STEPS`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from app.config import Settings as AppSettings
from app.core.attribution import GradientModels
from app.core.errors import ExplorerError
from app.core.features import Settings, layer_features, save_result
from app.core.store import ModelStore
from app.jobs.background import job_outcome, run_in_job_process
from app.jobs.features import FeatureJobs, write_json

logger = logging.getLogger(__name__)



def run(model_store: Path, state_dir: Path, model: str, version: str, layer: str, settings: Settings) -> None:
    """Optimise every live unit of ``layer`` of ``model`` (at ``version``) and store the result.

    Raises:
        ExplorerError: the model changed since the request, or it has no such layer.
    """
    jobs = FeatureJobs(state_dir, model_store)
    result_file, progress_file, lock_file, _ = jobs.paths(model, version, layer, settings)
    started = time.time()

    def report(done: int, total: int, stage: str) -> None:
        write_json(progress_file, {"done": done, "total": total, "stage": stage, "started": started})

    with job_outcome(progress_file, lock_file):
        # the server's limits (the process inherits its environment): a model it admits opens here too
        app_settings = AppSettings.from_env()
        limits = app_settings.model_limits
        loaded = ModelStore(model_store, limits=limits, test_set_max_bytes=app_settings.test_set_max_bytes).get(model)
        if loaded.version != version:
            raise ExplorerError(f"model {model!r} changed while its features were requested; ask again")
        info = loaded.engine.layer(layer)
        report(0, 0, "finding the units that never fire on the test set")
        features = layer_features(GradientModels(loaded.engine, limits), info.name, settings, report)
        save_result(result_file, features)
        report(settings.steps, settings.steps, "done")
        logger.info("features of %s/%s: %d units in %.1f s", model, layer, features.n_units, time.time() - started)


def run_command(argv: list[str]) -> None:
    """Run the job the command line above names (in this process: a Celery worker runs it so)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--model-store", "--state-dir", "--model", "--version", "--layer", "--settings"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args(argv)
    settings = Settings(**json.loads(args.settings)).check()
    run(Path(args.model_store), Path(args.state_dir), args.model, args.version, args.layer, settings)


def main(argv: list[str] | None = None) -> None:
    """The command line above, in a process of its own (see :func:`~app.jobs.background.run_in_job_process`)."""
    run_in_job_process(run_command, argv)


if __name__ == "__main__":
    main()
