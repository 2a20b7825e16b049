"""Bringing a model into the store: an uploaded Keras file (or a zip of a model folder) and its test set.

Everything is checked before the store changes: the name is free, each file fits the size limit, the archive holds
only plain files of a model folder, the model file's archive, weights and declared layers are within the limits
before Keras opens it (:mod:`app.core.model_archive`), the model loads in Keras safe mode (no code from ``Lambda``
layers), the test set's images fit the model's input and its labels its classes, one image through it costs no
more than the limits allow (:mod:`app.core.model_cost`), and one forward pass runs. The files are assembled
in a temporary folder of the store that listings skip and renamed into place only then, so a refused upload leaves
the store as it was and a half-written one never shows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from app.core.datasets import NAMED_DATASETS, DatasetError, DataSources, load_dataset
from app.core.errors import ExplorerError, InvalidInput, TooLarge
from app.core.layer_graph import LayerVerdict
from app.core.limits import check_room, format_bytes
from app.core.model_files import (
    META_FILE,
    TEST_SET_FILE,
    BrokenModel,
    json_default,
    read_meta,
    validate_name,
)
from app.core.store import TEMP_PREFIX, ModelExists, ModelStore

logger = logging.getLogger(__name__)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
ARCHIVE_SUFFIX = ".zip"
# The files of a model folder an archive may bring; anything else in it is left out (and said so).
FOLDER_FILES = {TEST_SET_FILE, "test_imgs.npy", "test_labels.npy", META_FILE}
MAX_ARCHIVE_MEMBERS = 64
COPY_CHUNK = 1 << 20


class UploadRefused(InvalidInput):
    """The upload cannot become a model; the message says why and the store is unchanged."""


@dataclass(frozen=True)
class IncomingFile:
    """A file as the client sent it: the name it gave (only its suffix is trusted) and a stream of its bytes."""

    filename: str
    stream: BinaryIO


@dataclass(frozen=True)
class AddedModel:
    """A model that passed every check and is now in the store.

    Attributes:
        name: its folder in the store.
        n_images, n_classes: the test set's size and the model's classes.
        verdicts: every layer, shown (as maps or nodes) or not, with the reason.
        notes: how the model is read (e.g. which of several outputs is shown).
        ignored: files of an uploaded archive that are not part of a model folder and were left out.
    """

    name: str
    n_images: int
    n_classes: int
    verdicts: tuple[LayerVerdict, ...]
    notes: tuple[str, ...]
    ignored: tuple[str, ...] = ()


def _suffix(filename: str) -> str:
    return PurePosixPath(str(filename).replace("\\", "/")).suffix.lower()


def copy_bounded(stream: BinaryIO, destination: Path, max_bytes: int, what: str) -> int:
    """Copy ``stream`` into ``destination``, refusing (:class:`TooLarge`) as soon as it passes ``max_bytes``.

    Returns:
        The bytes written.
    """
    written = 0
    with open(destination, "wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise TooLarge(f"{what} is larger than the upload limit of {format_bytes(max_bytes)} "
                               "(MAX_UPLOAD_BYTES)")
            out.write(chunk)
    if written == 0:
        raise UploadRefused(f"{what} is empty")
    return written


def _member_target(info: zipfile.ZipInfo, prefix: tuple[str, ...]) -> str | None:
    """The file name in the model folder an archive member lands at, or None for a member to leave out."""
    parts = PurePosixPath(info.filename).parts[len(prefix):]
    if len(parts) != 1:
        return None
    name = parts[0]
    return name if name in FOLDER_FILES or _suffix(name) in MODEL_SUFFIXES else None


def extract_model_folder(archive: Path, folder: Path, max_bytes: int) -> tuple[str, ...]:
    """Unpack the model folder in a zip into ``folder``: its model file, test set and meta.json.

    The files may sit at the top of the archive or in one folder. Member names and sizes are checked from the
    archive's directory before anything is written: no absolute paths, no ``..``, no links, at most
    :data:`MAX_ARCHIVE_MEMBERS` members and ``max_bytes`` unpacked in all (a zip bomb is refused unread).

    Returns:
        The members left out (not part of a model folder).

    Raises:
        UploadRefused, TooLarge.
    """
    if not zipfile.is_zipfile(archive):
        raise UploadRefused("the archive is not a zip file (corrupt or truncated?)")
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [info for info in bundle.infolist() if not info.is_dir()]
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise UploadRefused(f"the archive holds {len(members)} files; a model folder has at most "
                                    f"{MAX_ARCHIVE_MEMBERS}")
            for info in members:
                path = PurePosixPath(info.filename)
                if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
                    raise UploadRefused(f"the archive member {info.filename[:100]!r} points outside its folder")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UploadRefused(f"the archive member {info.filename[:100]!r} is a link")
            unpacked = sum(info.file_size for info in members)
            if unpacked > max_bytes:
                raise TooLarge(f"the archive unpacks to {format_bytes(unpacked)}; the upload limit is "
                               f"{format_bytes(max_bytes)} (MAX_UPLOAD_BYTES)")
            tops = {PurePosixPath(info.filename).parts[0] for info in members}
            nested = len(tops) == 1 and all(len(PurePosixPath(info.filename).parts) > 1 for info in members)
            prefix = (tops.pop(),) if nested else ()
            ignored, taken = [], set()
            for info in members:
                target = _member_target(info, prefix)
                if target is None or target in taken:
                    ignored.append(info.filename)
                    continue
                taken.add(target)
                with bundle.open(info) as source:
                    copy_bounded(source, folder / target, max_bytes, f"the archive member {target}")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise UploadRefused(f"cannot read the archive: {exc}") from exc
    if not any(_suffix(name) in MODEL_SUFFIXES for name in taken):
        raise UploadRefused("the archive holds no model file (.keras or .h5)")
    return tuple(ignored)


def _write_dataset_test_set(folder: Path, dataset: str, sources: DataSources) -> list[str]:
    try:
        data = load_dataset(dataset, sources)
    except DatasetError as exc:
        raise UploadRefused(str(exc)) from exc
    np.savez_compressed(folder / TEST_SET_FILE, images=data.x_test, labels=data.y_test)
    return list(data.class_names)


def add_model(
    store: ModelStore,
    name: str,
    model_file: IncomingFile,
    *,
    test_set: IncomingFile | None = None,
    dataset: str | None = None,
    sources: DataSources | None = None,
    uploaded_by: str | None = None,
    max_bytes: int,
) -> AddedModel:
    """Check an uploaded model with its test set and, only if every check passes, add it to the store as ``name``.

    Args:
        store: the model store.
        name: the new model's name (must be free).
        model_file: a ``.keras``/``.h5`` file, or a ``.zip`` of a model folder (which may bring its test set).
        test_set: an ``.npz`` with ``images`` [N, H, W, C] and ``labels`` [N].
        dataset: instead of ``test_set``, a built-in dataset whose test split becomes the test set.
        sources: where built-in datasets are read from.
        uploaded_by: the user's name, recorded in meta.json.
        max_bytes: the largest file (and unpacked archive) accepted.

    Raises:
        InvalidName, ModelExists (409), TooLarge (413), UploadRefused (400): the store is unchanged.
    """
    validate_name(name)
    if (store.root / name).exists():
        raise ModelExists(f"a model named {name!r} already exists: choose another name or delete it first")
    suffix = _suffix(model_file.filename)
    if suffix not in (*MODEL_SUFFIXES, ARCHIVE_SUFFIX):
        raise UploadRefused(f"the model file must be .keras, .h5 or a .zip of a model folder, not "
                            f"{model_file.filename[:100]!r}")
    if test_set is not None and dataset:
        raise UploadRefused("give a test-set file or a built-in dataset, not both")
    if test_set is not None and _suffix(test_set.filename) != ".npz":
        raise UploadRefused(f"the test set must be an .npz file with 'images' and 'labels', not "
                            f"{test_set.filename[:100]!r}")
    if suffix != ARCHIVE_SUFFIX and test_set is None and not dataset:
        raise UploadRefused("a test set is needed: an .npz file with 'images' and 'labels', or a built-in dataset ("
                            f"{', '.join(NAMED_DATASETS)})")
    check_room(store.root, max_bytes)
    folder = store.root / f"{TEMP_PREFIX}upload-{name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        added = _assemble(store, folder, name, model_file, suffix, test_set, dataset, sources or DataSources(),
                          uploaded_by, max_bytes)
        try:
            folder.rename(store.root / name)
        except OSError as exc:  # another upload took the name meanwhile: its model stays, this one goes
            raise ModelExists(f"a model named {name!r} was added meanwhile: choose another name") from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    logger.info("model %s added by %s", name, uploaded_by or "anonymous")
    return added


def _assemble(store: ModelStore, folder: Path, name: str, model_file: IncomingFile, suffix: str,
              test_set: IncomingFile | None, dataset: str | None, sources: DataSources, uploaded_by: str | None,
              max_bytes: int) -> AddedModel:
    """Write the upload's files into ``folder`` and check they make a usable model."""
    ignored: tuple[str, ...] = ()
    if suffix == ARCHIVE_SUFFIX:
        archive = folder / f"{TEMP_PREFIX}archive.zip"
        copy_bounded(model_file.stream, archive, max_bytes, "the archive")
        ignored = extract_model_folder(archive, folder, max_bytes)
        archive.unlink()
    else:
        target = "model.keras" if suffix == ".keras" else "model.h5"
        copy_bounded(model_file.stream, folder / target, max_bytes, "the model file")
    meta = read_meta(folder)
    if test_set is not None or dataset:
        for stale in FOLDER_FILES - {META_FILE}:
            (folder / stale).unlink(missing_ok=True)
    if test_set is not None:
        copy_bounded(test_set.stream, folder / TEST_SET_FILE, max_bytes, "the test set")
    elif dataset:
        meta["class_names"] = _write_dataset_test_set(folder, dataset, sources)
        meta["dataset"] = dataset
    meta.update(created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), source=model_file.filename[:200])
    if uploaded_by:
        meta["uploaded_by"] = uploaded_by
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=json_default))
    try:
        loaded = store.open_folder(folder, name, "upload")  # the file and the cost of an image checked first
        engine = loaded.engine
        probabilities = engine.probabilities(0)
    except BrokenModel as exc:
        raise UploadRefused(f"upload refused: {exc}") from exc
    except ExplorerError:
        raise
    except Exception as exc:  # Keras cannot call the model on its own test images
        raise UploadRefused(f"upload refused: the model cannot be run on its test images: {exc}".strip()) from exc
    if probabilities.shape != (len(loaded.class_names),):
        raise UploadRefused(f"upload refused: the model's output has shape {probabilities.shape}")
    return AddedModel(name, engine.n_images, len(loaded.class_names), tuple(engine.verdicts), loaded.notes, ignored)
