"""Statistics over the test set checked against direct numpy computations on tiny models."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import stats
from app.core.activations import LayerNotFound, softmax
from app.core.store import ModelStore
from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder


@pytest.fixture
def tiny_loaded(tiny_store):
    """The tiny model of ``tiny_store`` opened (24 images, 3 classes)."""
    return ModelStore(tiny_store).get("tiny")


def direct_outputs(loaded, layer):
    """All outputs of ``layer`` in one batch, the reference for the streamed computations."""
    return loaded.engine.layer_outputs(layer, np.arange(loaded.engine.n_images))


# --- confusion matrix and finder ------------------------------------------------------------------------------


def test_confusion_matrix_counts_pairs():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(stats.confusion_matrix(labels, predicted, 3), expected)


def test_model_confusion_equals_direct_count(tiny_loaded):
    predicted = tiny_loaded.engine.predictions().argmax(axis=1)
    expected = np.zeros((3, 3), dtype=int)
    for true_class, predicted_class in zip(tiny_loaded.labels, predicted, strict=True):
        expected[true_class, predicted_class] += 1
    matrix = stats.model_confusion(tiny_loaded)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == 24


PROBABILITIES = np.array(
    [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]]
)
LABELS = np.array([0, 1, 0, 2, 1, 1])  # predicted: 0, 1, 1, 2, 0, 2 -> images 2, 4, 5 are wrong


def test_find_images_filters_by_classes_and_correctness():
    find = stats.find_images
    assert find(LABELS, PROBABILITIES, stats.ImageQuery(correctness="wrong", sort="index")).tolist() == [2, 4, 5]
    assert find(LABELS, PROBABILITIES, stats.ImageQuery(correctness="correct", sort="index")).tolist() == [0, 1, 3]
    assert find(LABELS, PROBABILITIES, stats.ImageQuery(true_class=1, sort="index")).tolist() == [1, 4, 5]
    query = stats.ImageQuery(true_class=0, predicted_class=1)
    assert find(LABELS, PROBABILITIES, query).tolist() == [2]


def test_find_images_confidence_range_and_sort():
    query = stats.ImageQuery(min_confidence=0.5, max_confidence=0.8, sort="confidence-asc")
    # confidences: 0.9, 0.7, 0.5, 0.8, 0.6, 0.4
    assert stats.find_images(LABELS, PROBABILITIES, query).tolist() == [2, 4, 1, 3]
    query = stats.ImageQuery(sort="confidence-desc")
    assert stats.find_images(LABELS, PROBABILITIES, query).tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize(
    "query",
    [
        stats.ImageQuery(true_class=3),
        stats.ImageQuery(predicted_class=-1),
        stats.ImageQuery(correctness="maybe"),
        stats.ImageQuery(sort="random"),
        stats.ImageQuery(min_confidence=0.9, max_confidence=0.1),
    ],
)
def test_find_images_rejects_bad_queries(query):
    with pytest.raises(stats.StatsError):
        stats.find_images(LABELS, PROBABILITIES, query)


def test_parse_indices_keeps_valid_unique_numbers_up_to_limit():
    indices, problems = stats.parse_indices("3, 5 x 3 99 7 8", n_images=10, limit=3)
    assert indices == [3, 5, 7]
    assert len(problems) == 3  # 'x', 99 out of range, 8 over the limit


# --- class means and differences ------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["conv", "pool", "hidden", "output"])
@pytest.mark.parametrize("batch_size", [1, 5, 24])
def test_class_means_equal_direct_numpy_mean(tiny_loaded, layer, batch_size):
    outputs = direct_outputs(tiny_loaded, layer)
    result = stats.compute_class_means(tiny_loaded.engine, layer, 3, batch_size=batch_size)
    for label in range(3):
        expected = outputs[tiny_loaded.labels == label].mean(axis=0)
        np.testing.assert_allclose(result.means[label], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.counts, [8, 8, 8])


def test_class_means_batched_equals_unbatched(tiny_loaded):
    results = [stats.compute_class_means(tiny_loaded.engine, "conv", 3, batch_size=size).means for size in (1, 5, 24)]
    np.testing.assert_allclose(results[0], results[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1], results[2], rtol=1e-5, atol=1e-6)


def test_class_means_are_cached_per_version_and_layer(tiny_loaded):
    cache = stats.ClassStatistics(maxsize=2)
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
    result = stats.compute_class_means(loaded.engine, "hidden", 3)
    assert result.counts.tolist() == [8, 4, 0]
    assert np.isnan(result.means[2]).all()
    with pytest.raises(stats.StatsError, match="no images"):
        stats.class_difference(result, 0, 2)


def test_class_difference_ranks_units_by_mean_absolute_difference():
    means = np.zeros((2, 2, 2, 3), dtype=np.float32)
    means[0, :, :, 0] = [[1, -1], [1, -1]]  # mean |diff| 1, mean diff 0
    means[0, :, :, 1] = 0.5  # mean |diff| 0.5
    means[1, :, :, 2] = 3  # mean |diff| 3, larger for class B
    result = stats.class_difference(stats.ClassMeans("x", means, np.array([1, 1])), 0, 1)
    assert result.ranking.tolist() == [2, 0, 1]
    np.testing.assert_allclose(result.scores, [1, 0.5, 3])
    np.testing.assert_allclose(result.signed, [0, 0.5, -3])
    np.testing.assert_allclose(result.difference, means[0] - means[1])


def test_class_difference_of_nodes(tiny_loaded):
    means = stats.compute_class_means(tiny_loaded.engine, "hidden", 3)
    result = stats.class_difference(means, 0, 1)
    np.testing.assert_allclose(result.scores, np.abs(means.means[0] - means.means[1]))
    assert result.scores[result.ranking[0]] == result.scores.max()


# --- top images per unit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("layer", "by"), [("conv", "mean"), ("conv", "max"), ("pool", "max"), ("hidden", "mean")])
@pytest.mark.parametrize("batch_size", [1, 5, 24])
def test_top_images_are_the_k_largest(tiny_loaded, layer, by, batch_size):
    outputs = direct_outputs(tiny_loaded, layer)
    axes = (1, 2) if outputs.ndim == 4 else ()
    direct = (outputs.mean(axis=axes) if by == "mean" else outputs.max(axis=axes)) if axes else outputs
    k = 7
    top = stats.compute_top_units(tiny_loaded.engine, layer, k, by, batch_size=batch_size)
    for unit in range(direct.shape[1]):
        indices, values = top.unit(unit, k)
        expected_order = np.lexsort((np.arange(len(direct)), -direct[:, unit]))[:k]
        # values: exactly the k largest, best first; indices: the images that have them
        np.testing.assert_allclose(values, direct[expected_order, unit], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(direct[indices, unit], values, rtol=1e-5, atol=1e-6)
        assert len(set(indices.tolist())) == k
        if len(np.unique(np.round(direct[:, unit], 4))) == len(direct):  # no near-ties: the order is unique
            assert indices.tolist() == expected_order.tolist()


def test_top_images_rejects_bad_unit_k_and_by(tiny_loaded):
    with pytest.raises(stats.StatsError, match="unit 2"):
        stats.top_images(tiny_loaded, "conv", 2, 3)
    with pytest.raises(stats.StatsError, match="k must"):
        stats.top_images(tiny_loaded, "conv", 0, stats.MAX_TOP_K + 1)
    with pytest.raises(stats.StatsError, match="k must"):
        stats.top_images(tiny_loaded, "conv", 0, 25)  # more than the 24 test images
    with pytest.raises(stats.StatsError, match="'by'"):
        stats.top_images(tiny_loaded, "conv", 0, 3, by="median")
    with pytest.raises(LayerNotFound):
        stats.top_images(tiny_loaded, "nope", 0, 3)


# --- MLP contributions ----------------------------------------------------------------------------------------


def test_contributions_add_up_to_the_logit_computed_with_numpy(tiny_loaded):
    image = 5
    result = stats.contributions(tiny_loaded, "hidden", image, (2, 0))
    kernel, bias = tiny_loaded.model.get_layer("output").get_weights()
    # independent forward pass in numpy from the weights: conv -> pool -> flatten -> hidden -> output logits
    hidden_kernel, hidden_bias = tiny_loaded.model.get_layer("hidden").get_weights()
    flat = direct_outputs(tiny_loaded, "flat")[image]
    hidden = np.maximum(flat @ hidden_kernel + hidden_bias, 0)
    logits = hidden @ kernel + bias
    assert result.target == "output"
    np.testing.assert_allclose(result.activations, hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.contributions.sum(axis=1) + result.bias, logits[[2, 0]], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.logits, logits[[2, 0]], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.contributions[0], hidden * kernel[:, 2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.difference, hidden * (kernel[:, 2] - kernel[:, 0]), rtol=1e-5, atol=1e-6)
    # and the logits really are the model's: their softmax is its output
    np.testing.assert_allclose(softmax(result.all_logits), tiny_loaded.engine.probabilities(image), atol=1e-5)


def _model_with(tmp_path, name, middle):
    import keras

    keras.backend.clear_session()
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(name="flat"), keras.layers.Dense(5, activation="relu", name="h"),
         *middle, keras.layers.Dense(3, activation="softmax", name="out")]
    )
    images, labels = tiny_test_set(6)
    write_model_folder(tmp_path, name, model, images, labels)
    return ModelStore(tmp_path).get(name)


def test_contributions_pass_through_dropout(tmp_path):
    import keras

    loaded = _model_with(tmp_path, "dropout", [keras.layers.Dropout(0.5, name="drop")])
    result = stats.contributions(loaded, "h", 1, (0, 1))
    kernel, bias = loaded.model.get_layer("out").get_weights()
    hidden = loaded.engine.activations("h", 1)
    np.testing.assert_allclose(result.logits, (hidden @ kernel + bias)[[0, 1]], rtol=1e-5, atol=1e-5)
    assert stats.contribution_layers(loaded) == ["flat", "h", "drop"]  # dropout output feeds "out" too


def test_contributions_refuse_layers_that_break_the_linear_relation(tmp_path, tiny_loaded):
    import keras

    loaded = _model_with(tmp_path, "batchnorm", [keras.layers.BatchNormalization(name="bn")])
    with pytest.raises(stats.StatsError, match="not the identity"):
        stats.contributions(loaded, "h", 0, (0, 1))
    with pytest.raises(stats.StatsError, match="not followed by a Dense"):
        stats.contributions(tiny_loaded, "output", 0, (0, 1))
    with pytest.raises(stats.StatsError, match="vector layer"):
        stats.contributions(tiny_loaded, "conv", 0, (0, 1))
    with pytest.raises(stats.StatsError, match="out of range"):
        stats.contributions(tiny_loaded, "hidden", 0, (0, 3))


def test_contributions_in_a_functional_model(tmp_path):
    import keras

    keras.backend.clear_session()
    images, labels = tiny_test_set(6)
    write_model_folder(tmp_path, "functional", build_tiny_model(functional=True), images, labels)
    loaded = ModelStore(tmp_path).get("functional")
    result = stats.contributions(loaded, "hidden", 2, (1, 2))
    np.testing.assert_allclose(softmax(result.all_logits), loaded.engine.probabilities(2), atol=1e-5)
