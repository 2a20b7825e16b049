"""The model store: one folder per model, holding a Keras model, its frozen test set and optional metadata.

Layout of ``MODEL_STORE/<name>/``:

- ``model.keras`` (or a legacy ``model.h5``; any single ``*.keras``/``*.h5`` file such as the blog's ``cnn.h5``);
- ``test_set.npz`` with ``images`` [N, H, W, C] and ``labels`` [N] integers (the blog's ``test_imgs.npy`` plus
  one-hot ``test_labels.npy`` are read too);
- ``meta.json`` (optional): dataset, class names, training config, history, metrics, created.

A model whose files are missing or unreadable is listed as broken with the reason; the others keep working.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.cache import LRUCache

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_FILE_NAMES = ("model.keras", "model.h5")
TEST_SET_FILE = "test_set.npz"
META_FILE = "meta.json"
TEMP_PREFIX = ".tmp-"


class StoreError(Exception):
    """Base class of model-store errors; ``status`` is the HTTP status an API answers with."""

    status = 400


class InvalidName(StoreError):
    """A model name that could escape the store or is not a plain folder name."""


class ModelNotFound(StoreError):
    """No folder of that name in the store."""

    status = 404


class BrokenModel(StoreError):
    """The folder exists but its files are missing or cannot be read."""

    status = 409


class ModelExists(StoreError):
    """Saving would overwrite an existing model."""

    status = 409


def validate_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise :class:`InvalidName`.

    Names are 1-64 characters of letters, digits, ``_``, ``-`` and ``.``, start with a letter or digit and
    never contain ``..``, so they cannot point outside the store.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise InvalidName(
            f"invalid model name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def find_model_file(folder: Path) -> Path | None:
    """Return the model file of a model folder: ``model.keras``, ``model.h5``, or a single other Keras file."""
    for candidate in MODEL_FILE_NAMES:
        if (folder / candidate).is_file():
            return folder / candidate
    others = sorted(p for p in folder.iterdir() if p.suffix in (".keras", ".h5", ".hdf5") and p.is_file())
    return others[0] if others else None


def _test_set_files(folder: Path) -> list[Path]:
    if (folder / TEST_SET_FILE).is_file():
        return [folder / TEST_SET_FILE]
    blog_files = [folder / "test_imgs.npy", folder / "test_labels.npy"]
    return blog_files if all(p.is_file() for p in blog_files) else []


def model_version(folder: Path) -> str:
    """A short token that changes whenever the model or test-set files change (size and mtime)."""
    parts = []
    model_file = find_model_file(folder)
    for path in ([model_file] if model_file else []) + _test_set_files(folder):
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    # hashlib, not hash(): str hashes differ between processes and every worker must agree on versions
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12] if parts else "missing"


def load_test_set(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a model folder's frozen test set without unpickling anything.

    Returns:
        ``(images, labels)``: float32 [N, H, W, C] and int64 [N].

    Raises:
        BrokenModel: the files are missing, unreadable, or their shapes do not fit together.
    """
    files = _test_set_files(folder)
    if not files:
        raise BrokenModel(f"no test set: expected {TEST_SET_FILE} with 'images' and 'labels'")
    try:
        if files[0].name == TEST_SET_FILE:
            with np.load(files[0], allow_pickle=False) as data:
                missing = {"images", "labels"} - set(data.files)
                if missing:
                    raise BrokenModel(f"{TEST_SET_FILE} lacks {', '.join(sorted(missing))}")
                images, labels = data["images"], data["labels"]
        else:
            images = np.load(files[0], allow_pickle=False)
            labels = np.load(files[1], allow_pickle=False)
    except BrokenModel:
        raise
    except Exception as exc:
        raise BrokenModel(f"cannot read test set: {exc}") from exc
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels) or len(images) == 0:
        raise BrokenModel(
            f"test set shapes do not fit: images {images.shape}, labels {labels.shape} "
            "(expected [N, H, W, C] and [N], N > 0)"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise BrokenModel(f"test-set labels must be integers, got {labels.dtype}")
    return images.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


def read_meta(folder: Path) -> dict[str, Any]:
    """Return the folder's meta.json as a dict ({} when absent or unreadable: metadata is optional)."""
    path = folder / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return meta if isinstance(meta, dict) else {}


@dataclass
class LoadedModel:
    """A model opened from the store with its test set; the unit every cache is keyed by.

    Attributes:
        name, version: the store folder and the token of its files' state.
        model: the Keras model (loaded in safe mode, not compiled).
        images, labels: the frozen test set.
        meta: the folder's meta.json (possibly empty).
        class_names: one name per output class.
    """

    name: str
    version: str
    model: Any
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    class_names: list[str]
    activation_cache_size: int = 512
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _engine: Any = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """The (name, version) pair that caches are keyed by."""
        return (self.name, self.version)

    @property
    def engine(self):
        """The :class:`~app.core.activations.ActivationEngine` of this model version (created on first use)."""
        with self._lock:
            if self._engine is None:
                from app.core.activations import ActivationEngine

                self._engine = ActivationEngine(self, self.activation_cache_size)
            return self._engine


def open_model(folder: Path, name: str, version: str) -> LoadedModel:
    """Load a model folder: Keras model in safe mode, test set, metadata; check they fit together.

    Raises:
        BrokenModel: with a reason a user can act on.
    """
    import keras  # deferred: importing TensorFlow costs seconds and most callers only list names

    model_file = find_model_file(folder)
    if model_file is None:
        raise BrokenModel("no model file: expected model.keras or model.h5")
    images, labels = load_test_set(folder)
    if model_file.suffix == ".keras" and not zipfile.is_zipfile(model_file):
        raise BrokenModel(f"cannot load {model_file.name}: not a Keras zip archive (corrupt or truncated)")
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        raise BrokenModel(f"cannot load {model_file.name}: {exc}".strip()) from exc
    if len(model.inputs) != 1:
        raise BrokenModel(f"the model has {len(model.inputs)} inputs; only single-image-input models are supported")
    input_shape = tuple(model.inputs[0].shape[1:])
    if len(input_shape) != 3 or any(
        want is not None and want != have for want, have in zip(input_shape, images.shape[1:], strict=True)
    ):
        raise BrokenModel(f"model input {input_shape} does not fit test images {images.shape[1:]}")
    n_classes = int(model.outputs[0].shape[-1])
    meta = read_meta(folder)
    names = meta.get("class_names")
    if not (isinstance(names, list) and len(names) == n_classes):
        names = [str(i) for i in range(n_classes)]
    return LoadedModel(name, version, model, images, labels, meta, [str(n) for n in names])


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
    """

    def __init__(self, root: Path, cache_size: int = 4, activation_cache_size: int = 512) -> None:
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

    def get(self, name: str) -> LoadedModel:
        """Return the opened model ``name`` at its current version (cached).

        Raises:
            InvalidName, ModelNotFound, BrokenModel.
        """
        folder = self.folder(name)
        version = model_version(folder)

        def open_or_record_failure() -> LoadedModel | BrokenModel:
            try:
                loaded = open_model(folder, name, version)
                loaded.activation_cache_size = self.activation_cache_size
                return loaded
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
                except StoreError as exc:
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
            (temp / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))
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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
