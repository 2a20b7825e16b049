"""The model store: one folder per model (see :mod:`app.core.model_files`), opened on demand and cached.

Opening a model builds its :class:`~app.core.activations.ActivationEngine` here, so the model record stays plain
data and the engine knows nothing of folders. A model whose files are missing or unreadable is listed as broken
with the reason; the others keep working. Saves go to a temporary folder renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core.activations import DEFAULT_PASSES_CACHED, ActivationEngine
from app.core.cache import LRUCache
from app.core.errors import Conflict, ExplorerError, NotFound
from app.core.model_files import (
    META_FILE,
    NAME_PATTERN,
    TEST_SET_FILE,
    BrokenModel,
    json_default,
    model_version,
    read_meta,
    read_model_files,
    validate_name,
)

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"


class ModelNotFound(NotFound):
    """No folder of that name in the store."""


class ModelExists(Conflict):
    """Saving would overwrite an existing model."""


@dataclass(frozen=True)
class LoadedModel:
    """A model opened from the store with its test set and engine; the unit every cache is keyed by.

    Attributes:
        name, version: the store folder and the token of its files' state.
        model: the Keras model (loaded in safe mode, not compiled).
        images, labels: the frozen test set.
        meta: the folder's meta.json (possibly empty).
        class_names: one name per output class.
        engine: the layer outputs of this model version (built by the store, cached per version).
    """

    name: str
    version: str
    model: Any
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    class_names: list[str]
    engine: ActivationEngine

    @property
    def key(self) -> tuple[str, str]:
        """The (name, version) pair that caches are keyed by."""
        return (self.name, self.version)


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model list: a usable model, or a broken one with its reason."""

    name: str
    ok: bool
    reason: str
    version: str
    meta: dict[str, Any]


class ModelStore:
    """The folder of models, with a bounded cache of opened models keyed by (name, version).

    Listing remembers each version's verdict (usable or broken, with the reason) in a much larger cache of small
    entries, so a store with more models than ``cache_size`` does not reopen every model on every listing.

    Args:
        root: the store folder.
        activation_cache_size: forward passes each opened model's engine keeps.
        cache_size: opened models kept.
    """

    def __init__(self, root: Path, activation_cache_size: int = DEFAULT_PASSES_CACHED, cache_size: int = 4) -> None:
        self.root = Path(root)
        self.activation_cache_size = activation_cache_size
        self._opened: LRUCache[LoadedModel | BrokenModel] = LRUCache(cache_size)
        self._verdicts: LRUCache[ModelEntry] = LRUCache(1024)

    def folder(self, name: str) -> Path:
        """The folder of model ``name`` (validated); raises :class:`ModelNotFound` if absent."""
        folder = self.root / validate_name(name)
        if not folder.is_dir():
            raise ModelNotFound(f"no model named {name!r}")
        return folder

    def names(self) -> list[str]:
        """Names of the model folders, sorted; temporary folders of saves in progress are skipped."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith((TEMP_PREFIX, ".")) and NAME_PATTERN.match(p.name)
        )

    def _open(self, folder: Path, name: str, version: str) -> LoadedModel:
        files = read_model_files(folder)
        engine = ActivationEngine(files.model, files.images, name, self.activation_cache_size)
        return LoadedModel(name, version, files.model, files.images, files.labels, files.meta, files.class_names,
                           engine)

    def get(self, name: str) -> LoadedModel:
        """Return the opened model ``name`` at its current version (cached).

        Raises:
            InvalidName, ModelNotFound, BrokenModel.
        """
        folder = self.folder(name)
        version = model_version(folder)

        def open_or_record_failure() -> LoadedModel | BrokenModel:
            try:
                return self._open(folder, name, version)
            except BrokenModel as exc:
                logger.warning("model %s is broken: %s", name, exc)
                return exc

        loaded = self._opened.get_or_compute((name, version), open_or_record_failure)
        if isinstance(loaded, BrokenModel):
            self._verdicts.put((name, version), ModelEntry(name, False, str(loaded), version, read_meta(folder)))
            raise loaded
        self._verdicts.put((name, version), ModelEntry(name, True, "", version, loaded.meta))
        return loaded

    def entries(self) -> list[ModelEntry]:
        """Every model folder, usable or broken; a model is opened only the first time a version is seen."""
        rows = []
        for name in self.names():
            folder = self.root / name
            version = model_version(folder)
            entry = self._verdicts.get((name, version))
            if entry is None:  # first sight of this version: open it (get() records the verdict)
                try:
                    loaded = self.get(name)
                    entry = ModelEntry(name, True, "", loaded.version, loaded.meta)
                except ExplorerError as exc:
                    entry = ModelEntry(name, False, str(exc), version, read_meta(folder))
            rows.append(entry)
        return rows

    def save(
        self,
        name: str,
        model: Any,
        images: np.ndarray,
        labels: np.ndarray,
        meta: dict[str, Any],
        overwrite: bool = False,
    ) -> Path:
        """Write a model, its test set and meta.json into a temporary folder, then rename it into place.

        Readers never see a half-written model: the folder appears whole or not at all.

        Returns:
            The final folder.

        Raises:
            InvalidName; ModelExists when ``name`` is taken and ``overwrite`` is False.
        """
        final = self.root / validate_name(name)
        if final.exists() and not overwrite:
            raise ModelExists(f"a model named {name!r} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f"{TEMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            model.save(temp / "model.keras")
            np.savez_compressed(temp / TEST_SET_FILE, images=images, labels=labels)
            (temp / META_FILE).write_text(json.dumps(meta, indent=2, default=json_default))
            if final.exists():
                old = self.root / f"{TEMP_PREFIX}old-{name}-{uuid.uuid4().hex[:8]}"
                os.rename(final, old)
                os.rename(temp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(temp, final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return final
