"""Dataset loaders: IDX folders, Keras-format .npz, full MNIST from Keras' cache offline, the bundled subset."""

import gzip
import struct

import numpy as np
import pytest

from app.core.datasets import DatasetError, DataSources, load_dataset, read_idx


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def small_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20).astype(np.uint8),
        "x_test": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 7).astype(np.uint8),
    }


def test_idx_folder_roundtrip(tmp_path):
    arrays = small_arrays()
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for i, (key, stem) in enumerate(names.items()):
        compress = i % 2 == 0
        write_idx(tmp_path / (stem + (".gz" if compress else "")), arrays[key], compress)
    dataset = load_dataset(str(tmp_path), DataSources(data_dir=tmp_path))
    assert dataset.x_train.shape == (20, 28, 28, 1) and dataset.x_train.dtype == np.float32
    np.testing.assert_allclose(dataset.x_test[..., 0] * 255, arrays["x_test"], atol=1e-3)
    np.testing.assert_array_equal(dataset.y_train, arrays["y_train"])


def test_idx_rejects_garbage(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DatasetError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "bad")


def test_full_mnist_from_keras_cache_offline(tmp_path):
    """The `mnist` choice reads Keras' own mnist.npz format; a local file stands in for the download."""
    arrays = small_arrays(1)
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", **arrays)
    dataset = load_dataset("mnist", DataSources(keras_home=tmp_path))
    assert dataset.name == "mnist" and len(dataset.x_train) == 20 and dataset.class_names[9] == "9"
    np.testing.assert_array_equal(dataset.y_test, arrays["y_test"])


def test_npz_path_and_missing_keys(tmp_path):
    arrays = small_arrays(2)
    np.savez(tmp_path / "data.npz", **arrays)
    sources = DataSources(data_dir=tmp_path)
    assert len(load_dataset("data.npz", sources).x_test) == 7  # a name inside the data folder
    assert len(load_dataset(str(tmp_path / "data.npz"), sources).x_test) == 7  # or its full path
    np.savez(tmp_path / "partial.npz", x_train=arrays["x_train"])
    with pytest.raises(DatasetError, match="lacks"):
        load_dataset("partial.npz", sources)


def test_unknown_dataset_is_clear():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar-100'"):
        load_dataset("cifar-100")


def test_paths_outside_the_data_folder_are_refused_alike(tmp_path):
    """An existing folder elsewhere, a missing one, a link out and a 50,000-character name all get the same answer,
    so the API tells nobody which paths exist on the server."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "escape").symlink_to(tmp_path)
    np.savez(tmp_path / "outside.npz", **small_arrays(1))
    sources = DataSources(data_dir=data)
    messages = set()
    for name in ("/root/.ssh", str(tmp_path), "/nope/missing", "../outside.npz", "escape/outside.npz", "x" * 50_000,
                 "bad\x00name"):
        with pytest.raises(DatasetError, match="unknown dataset") as caught:
            load_dataset(name, sources)
        messages.add(str(caught.value).split(":", 1)[1])
    assert len(messages) == 1


def test_bundled_subset_is_frozen_and_stratified():
    dataset = load_dataset("mnist-subset")
    assert dataset.x_train.shape == (4000, 28, 28, 1) and dataset.x_test.shape == (1000, 28, 28, 1)
    train_counts = np.bincount(dataset.y_train, minlength=10)
    test_counts = np.bincount(dataset.y_test, minlength=10)
    np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.2, atol=0.01)
    assert dataset.x_train.min() >= 0.0 and dataset.x_train.max() <= 1.0
