"""``bench/zoo.py`` builds model-store folders the app opens: the CIFAR-sized model with a few coloured digits."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from app.config import PROJECT_ROOT
from app.core.store import ModelStore


@pytest.fixture(scope="module")
def zoo():
    """``bench/zoo.py`` as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_zoo", PROJECT_ROOT / "bench" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_the_cifar_folder_opens_in_the_store_with_the_digits_labels_and_shape(zoo, tmp_path):
    folder, built = zoo.build_folder(tmp_path, "cifar-cnn", 20)

    loaded = ModelStore(tmp_path).get("cifar-cnn")
    assert built and folder == tmp_path / "cifar-cnn"
    assert loaded.images.shape == (20, 32, 32, 3) and loaded.images.dtype == np.float32
    assert loaded.images.min() >= 0.0 and loaded.images.max() <= 1.0
    with np.load(zoo.DIGITS) as digits:
        np.testing.assert_array_equal(loaded.labels, digits["labels"][:20])
    assert loaded.class_names == [str(k) for k in range(10)]
    assert "bundled digits resized and coloured" in loaded.meta["dataset_description"]
    assert loaded.engine.probabilities(0).shape == (10,)
    assert not np.allclose(loaded.images[..., 0], loaded.images[..., 1])  # coloured, not grey in three channels
    assert zoo.build_folder(tmp_path, "cifar-cnn", 20) == (folder, False)  # cached
    assert zoo.build_folder(tmp_path, "cifar-cnn", 21)[1]  # another size: rebuilt


def test_copies_beyond_the_bundled_digits_repeat_their_labels_in_other_colours(zoo):
    digits = np.zeros((3, 28, 28, 1), np.float32)
    digits[:, 10:18, 12:16] = 1.0
    images, labels = zoo.coloured_digits(digits, np.array([4, 9, 7]), 7, 32)

    assert images.shape == (7, 32, 32, 3)
    np.testing.assert_array_equal(labels, [4, 9, 7, 4, 9, 7, 4])
    assert not np.allclose(images[0], images[3])
    np.testing.assert_array_equal(images, zoo.coloured_digits(digits, np.array([4, 9, 7]), 7, 32)[0])  # seeded
