"""A whole layer's feature visualisation as a background job (see :mod:`app.jobs.background`), its result an
``.npz`` keyed by (model, version, layer, settings)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from app.core.features import DEFAULT_SETTINGS, LayerFeatures, Settings, load_result, result_path
from app.jobs.background import BackgroundJobs, LayerJob, read_json, write_json

__all__ = ["FeatureJobs", "LayerJob", "read_json", "write_json"]

FOLDER = "features"


class FeatureJobs(BackgroundJobs):
    """Launches and reads layer visualisation jobs (``python -m app.jobs.features_worker``).

    Args:
        state_dir: the shared state folder (results go to its ``features`` folder).
        model_store: the model store folder the worker opens the model from.
    """

    folder_name = FOLDER
    worker_module = "app.jobs.features_worker"
    what = "layer's visualisation"

    def paths(self, model: str, version: str, layer: str, settings: Settings) -> tuple[Path, Path, Path, Path]:
        """``(result, progress, lock, log)`` files of one layer job."""
        result = result_path(self.folder, model, version, layer, settings)
        return (result, *self.job_files(result))

    def cached(self, model: str, version: str, layer: str,
               settings: Settings = DEFAULT_SETTINGS) -> LayerFeatures | None:
        """The stored result of that layer, or None."""
        return load_result(self.paths(model, version, layer, settings)[0])

    def get(self, model: str, version: str, layer: str, settings: Settings = DEFAULT_SETTINGS) -> LayerJob:
        """The layer's result if stored; else its progress, launching the job if none runs (or the last one
        failed more than a minute ago)."""
        arguments = ["--model", model, "--version", version, "--layer", layer, "--settings",
                     json.dumps(asdict(settings))]
        return self.status(self.paths(model, version, layer, settings)[0], load_result, arguments,
                           finished=lambda result: result.n_units)
