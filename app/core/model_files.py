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
import logging
import math
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import Conflict, ExplorerError, InvalidInput
from app.core.limits import check_arrays, format_bytes, read_json_file, resolve_inside
from app.core.model_archive import inspect_model_file

logger = logging.getLogger(__name__)

# Used with fullmatch: "$" would also match before a final newline, letting "name\n" through.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MODEL_FILE_NAMES = ("model.keras", "model.h5")
TEST_SET_FILE = "test_set.npz"
META_FILE = "meta.json"
# A model file's unpacked members, weights and variables: the upload limit (MAX_UPLOAD_BYTES) unless configured.
DEFAULT_MODEL_MAX_BYTES = 200_000_000
# A test set is held in memory as float32 by every worker that opens its model: 1,000 MNIST digits take 3 MB,
# Fashion-MNIST's 10,000 test images 31 MB. Larger declared arrays (an .npz "bomb" of a few MB on disk that
# unpacks to GBs) are refused before a byte of data is read.
DEFAULT_TEST_SET_MAX_BYTES = 256 * 10**6
# A test set saved uncompressed as float32 is read from disk as images are used (see map_stored_images), not held:
# only the disk bounds it. 10,000 images of 224 x 224 x 3 take 6 GB.
MAPPED_TEST_SET_MAX_BYTES = 16 * 10**9
META_MAX_BYTES = 1_000_000
META_MAX_DEPTH = 64


class InvalidName(InvalidInput):
    """A model name that could escape the store or is not a plain folder name."""


class BrokenModel(Conflict):
    """The folder exists but its files are missing or cannot be read."""


def validate_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise :class:`InvalidName`.

    Names are 1-64 characters of letters, digits, ``_``, ``-`` and ``.``, start with a letter or digit and
    never contain ``..``, so they cannot point outside the store.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"invalid model name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def _inside(folder: Path, path: Path) -> Path:
    """``path`` if it (symlinks resolved) stays in ``folder``, else :class:`BrokenModel`: a model file linked to
    somewhere else on the server is never read."""
    try:
        resolve_inside(folder, path.name)
    except ExplorerError as exc:
        raise BrokenModel(f"{path.name} is not usable: {exc}") from exc
    return path


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


def _check_test_set_size(files: list[Path], max_bytes: int) -> None:
    """Refuse test-set files whose arrays, read and converted to float32 images, would exceed ``max_bytes``: each
    file's arrays and, for the blog's two files, both together."""
    total = 0
    for path in files:
        try:
            headers = check_arrays(path, max_bytes)
        except ExplorerError as exc:
            raise BrokenModel(f"test set refused: {exc}") from exc
        total += sum(header.nbytes for header in headers.values())
        if total > max_bytes:
            raise BrokenModel(f"test set refused: its files declare {format_bytes(total)} of arrays together; the "
                              f"limit is {format_bytes(max_bytes)} (TEST_SET_MAX_MB)")
        images = headers.get("images") or headers.get("test_imgs")
        if images is not None:
            as_float32 = math.prod(images.shape) * 4  # counted by elements: a zero-size dtype declares 0 bytes
            if as_float32 > max_bytes:
                raise BrokenModel(
                    f"test set refused: {path.name}'s images would take {format_bytes(as_float32)} as float32; "
                    f"the limit is {format_bytes(max_bytes)} (TEST_SET_MAX_MB)"
                )


def map_stored_images(path: Path) -> np.ndarray | None:
    """The ``images`` of an ``.npz`` saved uncompressed (``np.savez``) as float32, memory-mapped read-only: its
    pages are read from the file when an image is used and shared by every process that maps it, so a worker never
    holds the whole test set (10,000 images of 224 x 224 x 3 are 6 GB). None when the member is compressed,
    encrypted, of another dtype or layout, or does not fit the file: such a test set is loaded as before.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("images.npy")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
        with open(path, "rb") as handle:
            handle.seek(info.header_offset)
            local = handle.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                return None
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_length + extra_length
            handle.seek(start)
            version = np.lib.format.read_magic(handle)
            if version not in ((1, 0), (2, 0)):
                return None
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(handle)
            offset = handle.tell()
    except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile, struct.error, SyntaxError, TypeError):
        return None
    if dtype != np.dtype("<f4") or fortran_order or len(shape) != 4 or min(shape, default=0) < 1:
        return None
    if offset + math.prod(shape) * 4 != start + info.file_size:  # the data ends where the member does
        return None
    try:
        return np.memmap(path, dtype=np.float32, mode="r", offset=offset, shape=shape)
    except (OSError, ValueError):  # the member's data lies past the end of the file
        return None


def _mapped_test_set(path: Path, images: np.ndarray, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """A test set whose images are memory-mapped: the labels read (within ``max_bytes``), the images' declared
    size within :data:`MAPPED_TEST_SET_MAX_BYTES`, shapes checked as for a loaded one."""
    if images.nbytes > MAPPED_TEST_SET_MAX_BYTES:
        raise BrokenModel(f"test set refused: its images take {format_bytes(images.nbytes)}; the limit for a test "
                          f"set read from disk is {format_bytes(MAPPED_TEST_SET_MAX_BYTES)}")
    try:
        headers = check_arrays(path, max_bytes + images.nbytes)
        labels_header = headers.get("labels")
        if labels_header is None:
            raise BrokenModel(f"{TEST_SET_FILE} lacks labels")
        if labels_header.nbytes > max_bytes:
            raise BrokenModel(f"test set refused: its labels take {format_bytes(labels_header.nbytes)}")
        with np.load(path, allow_pickle=False) as data:
            labels = data["labels"]
    except BrokenModel:
        raise
    except Exception as exc:
        raise BrokenModel(f"cannot read test set: {exc}") from exc
    if not isinstance(labels, np.ndarray):
        raise BrokenModel("the test set's labels are not .npy array data")
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or len(labels) != len(images):
        raise BrokenModel(f"test set shapes do not fit: images {images.shape}, labels {labels.shape} "
                          "(expected [N, H, W, C] and [N], N > 0)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise BrokenModel(f"test-set labels must be integers, got {labels.dtype}")
    return images, labels.astype(np.int64, copy=False)


def model_version(folder: Path) -> str:
    """A short token that changes whenever the model or test-set files change (size and mtime)."""
    parts = []
    model_file = find_model_file(folder)
    for path in ([model_file] if model_file else []) + _test_set_files(folder):
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    # hashlib, not hash(): str hashes differ between processes and every worker must agree on versions
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12] if parts else "missing"


def load_test_set(folder: Path, max_bytes: int = DEFAULT_TEST_SET_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Read a model folder's frozen test set without unpickling anything, its declared size checked first.

    Args:
        folder: the model folder.
        max_bytes: the most memory the test set may take once loaded.

    Returns:
        ``(images, labels)``: float32 [N, H, W, C] and int64 [N].

    Raises:
        BrokenModel: the files are missing, unreadable, too large, outside the folder, or their shapes do not fit.
    """
    files = [_inside(folder, path) for path in _test_set_files(folder)]
    if not files:
        raise BrokenModel(f"no test set: expected {TEST_SET_FILE} with 'images' and 'labels'")
    mapped = map_stored_images(files[0]) if files[0].name == TEST_SET_FILE else None
    if mapped is not None:
        return _mapped_test_set(files[0], mapped, max_bytes)
    _check_test_set_size(files, max_bytes)
    try:
        if files[0].name == TEST_SET_FILE:
            data = np.load(files[0], allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):  # .npy data named .npz: np.load answers with the array
                raise BrokenModel(f"{TEST_SET_FILE} is not an .npz (zip) archive")
            with data:
                missing = {"images", "labels"} - set(data.files)
                if missing:
                    raise BrokenModel(f"{TEST_SET_FILE} lacks {', '.join(sorted(missing))}")
                images, labels = data["images"], data["labels"]
        else:
            images = np.load(files[0], allow_pickle=False)
            labels = np.load(files[1], allow_pickle=False)
        for name, array in zip(("images", "labels"), (images, labels), strict=True):
            if not isinstance(array, np.ndarray):  # raw bytes of an .npz member, or a zip named .npy
                raise BrokenModel(f"the test set's {name} are not .npy array data")
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
    if not np.issubdtype(images.dtype, np.number) or np.issubdtype(images.dtype, np.complexfloating):
        raise BrokenModel(f"test-set images must be real numbers, got {images.dtype}")
    return images.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


# What each meta.json field the app reads must be; anything else is dropped, so a hand-edited file cannot break a
# page that formats it.
_META_TYPES = {"dataset": str, "dataset_description": str, "created": str, "class_names": list, "config": dict,
               "history": list, "metrics": dict, "job_id": str, "stopped": bool, "epochs_completed": int,
               "train_size": int, "test_size": int, "duration_seconds": int | float, "uploaded_by": str,
               "source": str}


def clean_meta(raw: Any) -> dict[str, Any]:
    """The fields of a meta.json the app uses, each of the type it expects (metrics: numbers only)."""
    if not isinstance(raw, dict):
        return {}
    meta = {key: value for key, value in raw.items() if key in _META_TYPES and isinstance(value, _META_TYPES[key])}
    if "metrics" in meta:
        meta["metrics"] = {
            str(key): value for key, value in meta["metrics"].items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    if "class_names" in meta and not all(isinstance(name, str | int) for name in meta["class_names"]):
        del meta["class_names"]
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    """Return the folder's meta.json, checked and cleaned ({} when absent or unusable: metadata is optional).

    The file must lie in the folder (a symlink elsewhere is ignored), be at most 1 MB and nested at most 64 deep:
    a single bad file must not take the model list, and with it every page, down.
    """
    path = folder / META_FILE
    if not path.is_file():
        return {}
    try:
        return clean_meta(read_json_file(path, META_MAX_BYTES, META_MAX_DEPTH, root=folder))
    except ExplorerError as exc:
        logger.warning("ignoring %s: %s", path, exc)
        return {}


@dataclass(frozen=True)
class ModelFiles:
    """What a model folder holds, read and checked to fit together.

    Attributes:
        model: the Keras model (loaded in safe mode, not compiled).
        images, labels: the frozen test set.
        meta: the folder's meta.json (possibly empty).
        class_names: one name per output class.
        notes: what a user should know about how the model is read (e.g. which of several outputs is shown).
    """

    model: Any
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    class_names: list[str]
    notes: tuple[str, ...] = ()


def read_model_files(folder: Path, test_set_max_bytes: int = DEFAULT_TEST_SET_MAX_BYTES,
                     model_max_bytes: int = DEFAULT_MODEL_MAX_BYTES) -> ModelFiles:
    """Load a model folder: Keras model in safe mode, test set, metadata; check they fit together.

    The model file's archive, weights and declared layers are checked first
    (:func:`app.core.model_archive.inspect_model_file`): Keras opens only a file within the limits.

    Args:
        folder: the model folder.
        test_set_max_bytes: see :func:`load_test_set`.
        model_max_bytes: the most the model file's unpacked members, its weights and its variables may take.

    Raises:
        BrokenModel: with a reason a user can act on.
    """
    import keras  # deferred: importing TensorFlow costs seconds and most callers only list names

    model_file = find_model_file(folder)
    if model_file is None:
        raise BrokenModel("no model file: expected model.keras or model.h5")
    _inside(folder, model_file)
    images, labels = load_test_set(folder, test_set_max_bytes)
    if model_file.suffix == ".keras" and not zipfile.is_zipfile(model_file):
        raise BrokenModel(f"cannot load {model_file.name}: not a Keras zip archive (corrupt or truncated)")
    try:
        inspect_model_file(model_file, model_max_bytes)
    except ExplorerError as exc:
        raise BrokenModel(str(exc)) from exc
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        raise BrokenModel(f"cannot load {model_file.name}: {exc}".strip()) from exc
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as exc:  # a Sequential model saved before it was ever built or called
        raise BrokenModel(f"the model has no defined inputs (saved before it was built?): {exc}") from exc
    if len(inputs) != 1:
        raise BrokenModel(f"the model has {len(inputs)} inputs; only single-image-input models are supported")
    input_shape = tuple(inputs[0].shape[1:])
    if len(input_shape) != 3 or any(
        want is not None and want != have for want, have in zip(input_shape, images.shape[1:], strict=True)
    ):
        raise BrokenModel(f"model input {input_shape} does not fit test images {images.shape[1:]}")
    scores = tuple(outputs[0].shape[1:])
    if len(scores) != 1 or not isinstance(scores[0], int) or scores[0] < 2:
        raise BrokenModel(
            f"the model's {'first ' if len(outputs) > 1 else ''}output has shape {scores}: expected one score per "
            "class for at least 2 classes (a single sigmoid unit is not supported: use 2 units with softmax)"
        )
    notes = ()
    if len(outputs) > 1:
        notes = (f"The model has {len(outputs)} outputs; the first ({scores[0]} classes) is shown as the class "
                 "probabilities.",)
    n_classes = scores[0]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise BrokenModel(
            f"test-set labels run from {labels.min()} to {labels.max()}, but the model scores {n_classes} classes "
            f"(labels must be 0-{n_classes - 1})"
        )
    meta = read_meta(folder)
    names = meta.get("class_names")
    if not (names and len(names) == n_classes):
        names = [str(i) for i in range(n_classes)]
    return ModelFiles(model, images, labels, meta, [str(n) for n in names], notes)


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays in meta.json."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
