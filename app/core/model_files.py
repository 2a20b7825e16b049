"""The files of one model folder: a Keras model, its frozen test set and optional metadata, read safely.

Layout of ``MODEL_STORE/<name>/``:

- ``model.keras`` (or a legacy ``model.h5``; any single ``*.keras``/``*.h5`` file such as the blog's ``cnn.h5``);
- ``test_set.npz`` with ``images`` [N, H, W, C] and ``labels`` [N] integers (the blog's ``test_imgs.npy`` plus
  one-hot ``test_labels.npy`` are read too);
- ``meta.json`` (optional): dataset, class names, training config, history, metrics, created.

Nothing here keeps state or builds engines: :mod:`app.core.store` composes these readers into opened models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_FILE_NAMES = ("model.keras", "model.h5")
TEST_SET_FILE = "test_set.npz"
META_FILE = "meta.json"


class InvalidName(InvalidInput):
    """A model name that could escape the store or is not a plain folder name."""


class BrokenModel(Conflict):
    """The folder exists but its files are missing or cannot be read."""


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


@dataclass(frozen=True)
class ModelFiles:
    """What a model folder holds, read and checked to fit together.

    Attributes:
        model: the Keras model (loaded in safe mode, not compiled).
        images, labels: the frozen test set.
        meta: the folder's meta.json (possibly empty).
        class_names: one name per output class.
    """

    model: Any
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    class_names: list[str]


def read_model_files(folder: Path) -> ModelFiles:
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
    return ModelFiles(model, images, labels, meta, [str(n) for n in names])


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays in meta.json."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
