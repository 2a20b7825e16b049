"""Class means and class differences, checked against direct numpy means over the test set."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.classes import ClassMeans, class_difference, compute_class_means
from app.core.errors import InvalidInput
from app.core.statistics import StatisticsCache
from app.core.store import ModelStore
from tests.conftest import build_tiny_model, layer_outputs, tiny_test_set, write_model_folder


@pytest.mark.parametrize("layer", ["conv", "pool", "hidden", "output"])
@pytest.mark.parametrize("batch_size", [1, 5, 24])
def test_class_means_equal_direct_numpy_mean(tiny_loaded, layer, batch_size):
    outputs = layer_outputs(tiny_loaded, layer)
    result = compute_class_means(tiny_loaded.engine, tiny_loaded.labels, layer, 3, batch_size=batch_size)
    for label in range(3):
        expected = outputs[tiny_loaded.labels == label].mean(axis=0)
        np.testing.assert_allclose(result.means[label], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.counts, [8, 8, 8])


def test_class_means_batched_equals_unbatched(tiny_loaded):
    engine, labels = tiny_loaded.engine, tiny_loaded.labels
    results = [compute_class_means(engine, labels, "conv", 3, batch_size=size).means for size in (1, 5, 24)]
    np.testing.assert_allclose(results[0], results[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1], results[2], rtol=1e-5, atol=1e-6)


def test_class_means_are_cached_per_version_and_layer(tiny_loaded):
    cache = StatisticsCache(maxsize=2)
    first = cache.class_means(tiny_loaded, "conv")
    assert cache.class_means(tiny_loaded, "conv") is first
    cache.class_means(tiny_loaded, "pool")
    cache.class_means(tiny_loaded, "hidden")  # evicts "conv": the cache stays bounded
    assert cache.class_means(tiny_loaded, "conv") is not first


def test_class_means_of_an_absent_class_are_nan(tmp_path):
    images, labels = tiny_test_set(12)
    labels = np.where(labels == 2, 0, labels)  # no image of class 2
    write_model_folder(tmp_path, "two-classes", build_tiny_model(), images, labels)
    loaded = ModelStore(tmp_path).get("two-classes")
    result = compute_class_means(loaded.engine, loaded.labels, "hidden", 3)
    assert result.counts.tolist() == [8, 4, 0]
    assert np.isnan(result.means[2]).all()
    with pytest.raises(InvalidInput, match="no images"):
        class_difference(result, 0, 2)


def test_class_difference_ranks_units_by_mean_absolute_difference():
    means = np.zeros((2, 2, 2, 3), dtype=np.float32)
    means[0, :, :, 0] = [[1, -1], [1, -1]]  # mean |diff| 1, mean diff 0
    means[0, :, :, 1] = 0.5  # mean |diff| 0.5
    means[1, :, :, 2] = 3  # mean |diff| 3, larger for class B
    result = class_difference(ClassMeans("x", means, np.array([1, 1])), 0, 1)
    assert result.ranking.tolist() == [2, 0, 1]
    np.testing.assert_allclose(result.scores, [1, 0.5, 3])
    np.testing.assert_allclose(result.signed, [0, 0.5, -3])
    np.testing.assert_allclose(result.difference, means[0] - means[1])


def test_class_difference_of_nodes(tiny_loaded):
    means = compute_class_means(tiny_loaded.engine, tiny_loaded.labels, "hidden", 3)
    result = class_difference(means, 0, 1)
    np.testing.assert_allclose(result.scores, np.abs(means.means[0] - means.means[1]))
    assert result.scores[result.ranking[0]] == result.scores.max()


@pytest.mark.parametrize("layer", ["conv", "hidden"])
@pytest.mark.parametrize("batch_size", [1, 7, 24])
def test_class_distances_equal_direct_norms_to_each_class_mean(tiny_loaded, layer, batch_size):
    from app.core.classes import compute_class_distances

    outputs = layer_outputs(tiny_loaded, layer).reshape(len(tiny_loaded.labels), -1).astype(np.float64)
    means = compute_class_means(tiny_loaded.engine, tiny_loaded.labels, layer, 3)
    distances = compute_class_distances(tiny_loaded.engine, means, batch_size=batch_size)
    centres = means.means.reshape(3, -1)
    expected = np.linalg.norm(outputs[:, np.newaxis, :] - centres[np.newaxis], axis=2)
    assert distances.shape == (24, 3) and distances.dtype == np.float32
    np.testing.assert_allclose(distances, expected, rtol=1e-4, atol=1e-4)


def test_class_distances_to_an_absent_class_are_nan_and_cached(tmp_path):
    from app.core.classes import compute_class_distances

    images, labels = tiny_test_set(12)
    labels = np.where(labels == 2, 0, labels)
    write_model_folder(tmp_path, "two-classes", build_tiny_model(), images, labels)
    loaded = ModelStore(tmp_path).get("two-classes")
    distances = compute_class_distances(loaded.engine, compute_class_means(loaded.engine, loaded.labels, "hidden", 3))
    assert np.isnan(distances[:, 2]).all() and np.isfinite(distances[:, :2]).all()
    cache = StatisticsCache(maxsize=2)
    assert cache.class_distances(loaded, "hidden") is cache.class_distances(loaded, "hidden")
