"""Whole-test-set statistics of a layer as background jobs (see :mod:`app.jobs.background`): the top images of
every unit, the class means, every image's distance to them and the fixed colour range, each an ``.npz`` keyed by
(model, version, layer, kind) in ``STATE_DIR/statistics``, read by every web worker.

:class:`~app.core.statistics.StatisticsCache` asks here for what a request may not compute itself (a pass over a
large test set); what it computes itself (a small one) it stores here too, so the other workers read it.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

from app.core.model_files import InvalidName, validate_name
from app.core.statistics import KINDS, load_statistic, save_statistic
from app.core.store import LoadedModel
from app.jobs.background import BackgroundJobs, LayerJob

FOLDER = "statistics"
# A replaced model version's statistics are removed once this old (seconds since last written): a worker still
# showing the old version a moment longer keeps reading them.
OLD_VERSION_SECONDS = 3600


class StatisticsJobs(BackgroundJobs):
    """Launches and reads statistics jobs (``python -m app.jobs.statistics_worker``), and stores statistics computed
    in a request.

    Args:
        state_dir: the shared state folder (results go to its ``statistics`` folder).
        model_store: the model store folder the worker opens the model from.
    """

    folder_name = FOLDER
    worker_module = "app.jobs.statistics_worker"
    what = "pass over a test set"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tidied: set[tuple[str, str]] = set()  # model versions whose replaced versions were removed

    def path(self, model: str, version: str, layer: str, kind: str) -> Path:
        """Where the statistic ``kind`` of (model, version, layer) is stored. Layer names may hold ``/`` (nested
        models): the file name carries a hash of the layer name beside a readable part."""
        digest = hashlib.sha1(layer.encode()).hexdigest()[:10]
        readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer)[:40]
        return self.folder / model / version / f"{readable}-{digest}-{kind}.npz"

    def stored(self, loaded: LoadedModel, layer: str, kind: str) -> Any:
        """The stored statistic, or None."""
        return load_statistic(self.path(loaded.name, loaded.version, layer, kind), kind)

    def keep(self, loaded: LoadedModel, layer: str, kind: str, value: Any) -> None:
        """Store a statistic computed elsewhere (a request's own small pass) for every worker."""
        self._tidy(loaded)
        save_statistic(self.path(loaded.name, loaded.version, layer, kind), kind, value)

    def _tidy(self, loaded: LoadedModel) -> None:
        """Once per model version and process, when it first stores or computes: remove the statistics of the
        model's replaced versions (see :data:`OLD_VERSION_SECONDS`)."""
        key = (loaded.name, loaded.version)
        if key not in self._tidied:
            self._tidied.add(key)
            self.forget(loaded.name, keep_version=loaded.version, older_than=OLD_VERSION_SECONDS)

    def forget(self, model: str, keep_version: str | None = None, older_than: float = 0.0) -> list[str]:
        """Remove the stored statistics of ``model``'s versions other than ``keep_version`` (all of them for a
        deleted model) last written more than ``older_than`` seconds ago; a running job's folder is left alone.

        Returns:
            The versions removed.
        """
        try:
            validate_name(model)
        except InvalidName:
            return []
        removed = []
        try:
            versions = list((self.folder / model).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        now = time.time()
        for folder in versions:
            if folder.name == keep_version or folder.is_symlink() or not folder.is_dir():
                continue
            try:
                if now - folder.stat().st_mtime < older_than or any(folder.glob("*.lock")):
                    continue
            except FileNotFoundError:  # removed meanwhile by another worker
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        return removed

    def job(self, loaded: LoadedModel, layer: str, kind: str) -> LayerJob:
        """The statistic if stored; else its job's progress, the job launched unless one runs."""
        if kind not in KINDS:
            raise ValueError(f"unknown statistic {kind!r}")
        self._tidy(loaded)
        result = self.path(loaded.name, loaded.version, layer, kind)
        result.parent.mkdir(parents=True, exist_ok=True)
        arguments = ["--model", loaded.name, "--version", loaded.version, "--layer", layer, "--kind", kind]
        return self.status(result, lambda path: load_statistic(path, kind), arguments)
