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
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core.activations import DEFAULT_PASSES_BYTES, ActivationEngine
from app.core.cache import LRUCache
from app.core.errors import Conflict, ExplorerError, NotFound
from app.core.limits import resolve_inside
from app.core.model_cost import DEFAULT_MODEL_LIMITS, ModelCost, ModelLimits, check_model
from app.core.model_files import (
    DEFAULT_TEST_SET_MAX_BYTES,
    META_FILE,
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
# The model a page shows when its link names none (when the store has it): the bundled blog CNN.
DEFAULT_MODEL = "mnist-cnn"


def default_model(names: list[str]) -> str | None:
    """The model a page shows when its link names none, among ``names``: :data:`DEFAULT_MODEL`, else the first."""
    return DEFAULT_MODEL if DEFAULT_MODEL in names else (names[0] if names else None)
# A save in progress touches its temporary folder at least every few seconds; one untouched for an hour was left
# by a process killed mid-save.
STALE_TEMP_SECONDS = 3600


class ModelNotFound(NotFound):
    """No folder of that name in the store."""


class ModelExists(Conflict):
    """Saving would overwrite an existing model."""


def next_free_name(base: str, taken: set[str]) -> str:
    """``base`` if no model has it, else ``base-2``, ``base-3``, ... (the first free one)."""
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


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
        notes: what a user should know about how the model is read (see :class:`ModelFiles`).
        cost: what one image through the model costs (checked against the store's limits when it was opened).
    """

    name: str
    version: str
    model: Any
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    class_names: list[str]
    engine: ActivationEngine
    notes: tuple[str, ...] = ()
    cost: ModelCost | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The (name, version) pair that caches are keyed by."""
        return (self.name, self.version)


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model list: a usable model (with notes on how it is read and its cost per image), or a broken
    one with its reason."""

    name: str
    ok: bool
    reason: str
    version: str
    meta: dict[str, Any]
    notes: tuple[str, ...] = ()
    cost: ModelCost | None = None


# A test set saved by the app with more float32 bytes than this is written uncompressed, so that every worker reads
# it from disk as its images are used (memory-mapped, see app.core.model_files.map_stored_images) instead of each
# holding it; smaller ones (the bundled 1,000 digits: 3 MB, Fashion-MNIST's 10,000: 31 MB) are compressed.
MAPPED_TEST_SET_MIN_BYTES = 64 * 10**6


def save_test_set(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a test set as ``test_set.npz``: compressed, or uncompressed float32 beyond
    :data:`MAPPED_TEST_SET_MIN_BYTES` (read lazily then)."""
    images = np.asarray(images)
    if images.size * 4 > MAPPED_TEST_SET_MIN_BYTES:
        np.savez(path, images=images.astype(np.float32, copy=False), labels=labels)
    else:
        np.savez_compressed(path, images=images, labels=labels)


class ModelStore:
    """The folder of models, with a bounded cache of opened models keyed by (name, version).

    Listing remembers each version's verdict (usable or broken, with the reason) in a much larger cache of small
    entries, so a store with more models than ``cache_size`` does not reopen every model on every listing.

    Args:
        root: the store folder.
        activation_cache_bytes: the forward passes each opened model's engine keeps, in bytes.
        cache_size: opened models kept.
        test_set_max_bytes: the largest test set (as loaded) a model may have; larger ones are listed as broken.
        limits: what a model's file and one image through it may cost; a model beyond them is listed as broken
            and never run.
    """

    def __init__(
        self,
        root: Path,
        activation_cache_bytes: int = DEFAULT_PASSES_BYTES,
        cache_size: int = 4,
        test_set_max_bytes: int = DEFAULT_TEST_SET_MAX_BYTES,
        limits: ModelLimits = DEFAULT_MODEL_LIMITS,
    ) -> None:
        self.root = Path(root)
        self.activation_cache_bytes = activation_cache_bytes
        self.test_set_max_bytes = test_set_max_bytes
        self.limits = limits
        self._opened: LRUCache[LoadedModel | BrokenModel] = LRUCache(cache_size)
        self._verdicts: LRUCache[ModelEntry] = LRUCache(1024)

    def folder(self, name: str) -> Path:
        """The folder of model ``name`` (validated).

        Raises:
            InvalidName: not a plain model name.
            ModelNotFound: no such folder.
            BrokenModel: the folder is a link to somewhere outside the store.
        """
        folder = self.root / validate_name(name)
        if not folder.is_dir():
            raise ModelNotFound(f"no model named {name!r}")
        try:
            resolve_inside(self.root, name)
        except NotFound as exc:  # deleted since the check above
            raise ModelNotFound(f"no model named {name!r}") from exc
        except ExplorerError as exc:
            raise BrokenModel(f"the folder is not usable: {exc}") from exc
        return folder

    def names(self) -> list[str]:
        """Names of the model folders, sorted, valid or not; temporary folders of saves in progress are skipped."""
        try:
            children = list(self.root.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        # is_dir() is False for a folder deleted since the listing: it is left out, as it would be a moment later
        return sorted(p.name for p in children if not p.name.startswith((TEMP_PREFIX, ".")) and p.is_dir())

    def holds(self, name: str) -> bool:
        """Whether the store has a model folder named ``name`` now, usable or broken (an invalid name: no). One
        look at the folder, no model opened: cheap enough for a page that polls."""
        try:
            return (self.root / validate_name(name)).is_dir()
        except ExplorerError:
            return False

    def free_name(self, base: str) -> str:
        """``base`` if no model folder has it, else the first free ``base-2``, ``base-3``, ..."""
        taken = set(self.names()) if self.root.is_dir() else set()
        return next_free_name(base, taken)

    def remove_stale_temporaries(self, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
        """Delete temporary folders of saves that were killed midway: untouched (no file in them modified) for
        ``older_than`` seconds. A save in progress keeps writing, so it is never taken.

        Returns:
            The names of the folders removed.
        """
        try:
            children = list(self.root.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        removed = []
        now = time.time()
        for folder in children:
            if not folder.name.startswith(TEMP_PREFIX) or folder.is_symlink() or not folder.is_dir():
                continue
            try:
                newest = max([folder.stat().st_mtime] + [
                    os.stat(os.path.join(parent, name)).st_mtime
                    for parent, _, files in os.walk(folder) for name in files
                ])
            except OSError:  # removed meanwhile by another worker's clean-up
                continue
            if now - newest >= older_than:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
                logger.warning("removed %s, left by a save that did not finish", folder.name)
        return removed

    def open_folder(self, folder: Path, name: str, version: str) -> LoadedModel:
        """Open the model folder ``folder`` (uncached) as model ``name``: its files checked and read, its layers
        traced and priced, and its first test image run through it (the graph traced before a user's first view).

        Raises:
            BrokenModel: the files are unusable, or one image through the model costs more than :attr:`limits`.
        """
        files = read_model_files(folder, self.test_set_max_bytes, self.limits.max_file_bytes)
        try:
            engine = ActivationEngine(files.model, files.images, name, self.activation_cache_bytes)
        except (ValueError, TypeError, AttributeError, NotImplementedError) as exc:  # Keras cannot re-call it
            raise BrokenModel(f"cannot reach the model's layers: {exc}".strip()) from exc
        cost = engine.cost
        problems = check_model(cost, self.limits)
        if problems:
            raise BrokenModel(f"too costly to explore: {'; '.join(problems)}")
        try:
            engine.warm_up()
        except Exception as exc:  # noqa: BLE001 - any failure of the model on its own test image makes it unusable
            raise BrokenModel(f"the model fails on its first test image: {str(exc)[:300]}") from exc
        return LoadedModel(name, version, files.model, files.images, files.labels, files.meta, files.class_names,
                           engine, files.notes, cost)

    def get(self, name: str) -> LoadedModel:
        """Return the opened model ``name`` at its current version (cached).

        Raises:
            InvalidName, ModelNotFound, BrokenModel.
        """
        folder = self.folder(name)
        try:
            version = model_version(folder)
        except FileNotFoundError as exc:  # deleted since self.folder() saw it
            raise ModelNotFound(f"no model named {name!r}") from exc

        def open_or_record_failure() -> LoadedModel | BrokenModel:
            try:
                return self.open_folder(folder, name, version)
            except ExplorerError as exc:
                if not isinstance(exc, BrokenModel):
                    raise
                failure = exc
            except OSError as exc:
                failure = BrokenModel(f"cannot read the model's files: {exc.strerror or exc}")
            except Exception as exc:  # noqa: BLE001 - the files are outside input: no reader may take the list down
                logger.exception("model %s could not be opened", name)
                failure = BrokenModel(f"cannot open the model ({type(exc).__name__}: {str(exc)[:200]})")
            if not folder.is_dir():  # deleted while it was being read: gone, not broken
                raise ModelNotFound(f"no model named {name!r}") from failure
            logger.warning("model %s is broken: %s", name, failure)
            return failure

        loaded = self._opened.get_or_compute((name, version), open_or_record_failure)
        if isinstance(loaded, BrokenModel):
            self._verdicts.put((name, version), ModelEntry(name, False, str(loaded), version, read_meta(folder)))
            raise loaded
        self._verdicts.put((name, version), ModelEntry(name, True, "", version, loaded.meta, loaded.notes,
                                                      loaded.cost))
        return loaded

    def entries(self) -> list[ModelEntry]:
        """Every model folder, usable or broken; a model is opened only the first time a version is seen."""
        rows = []
        for name in self.names():
            folder = self.root / name
            try:
                self.folder(name)
                version = model_version(folder)
                entry = self._verdicts.get((name, version))
                if entry is None:  # first sight of this version: open it (get() records the verdict)
                    try:
                        loaded = self.get(name)
                        entry = ModelEntry(name, True, "", loaded.version, loaded.meta, loaded.notes, loaded.cost)
                    except ModelNotFound:
                        raise
                    except ExplorerError as exc:
                        entry = ModelEntry(name, False, str(exc), version, read_meta(folder))
            except (ModelNotFound, FileNotFoundError):  # deleted since the listing: as if listed a moment later
                continue
            except ExplorerError as exc:  # an invalid name or a link out of the store: listed, never opened
                rows.append(ModelEntry(name, False, str(exc), "invalid", {}))
                continue
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
            save_test_set(temp / TEST_SET_FILE, images, labels)
            (temp / META_FILE).write_text(json.dumps(meta, indent=2, default=json_default))
            old = None
            if overwrite:
                old = self.root / f"{TEMP_PREFIX}old-{name}-{uuid.uuid4().hex[:8]}"
                try:
                    os.rename(final, old)
                except FileNotFoundError:  # nothing to replace (or deleted meanwhile)
                    old = None
            os.rename(temp, final)  # a model saved under the name meanwhile makes this fail: it is never replaced
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return final

    def delete(self, name: str) -> None:
        """Remove model ``name`` from the store, usable or broken.

        The folder is first renamed to a temporary name (listings skip it at once, in every worker), then removed;
        a process killed in between leaves only a temporary folder for :meth:`remove_stale_temporaries`.

        Raises:
            InvalidName, ModelNotFound.
        """
        path = self.root / validate_name(name)
        if path.is_symlink():  # a link to elsewhere: remove the link, never what it points to
            try:
                path.unlink()
            except FileNotFoundError as exc:  # deleted meanwhile by another request
                raise ModelNotFound(f"no model named {name!r}") from exc
            return
        if not path.is_dir():
            raise ModelNotFound(f"no model named {name!r}")
        doomed = self.root / f"{TEMP_PREFIX}deleted-{name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, doomed)
        except FileNotFoundError as exc:  # deleted meanwhile by another request
            raise ModelNotFound(f"no model named {name!r}") from exc
        shutil.rmtree(doomed, ignore_errors=True)
        logger.info("model %s deleted", name)
