"""Feature visualisation: optimal inputs do what they claim, checked against computations written out here."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.attribution import GradientModels
from app.core.errors import InvalidInput
from app.core.features import (
    LayerFeatures,
    Settings,
    dead_units,
    kernels_of,
    layer_features,
    load_result,
    optimise_units,
    result_path,
    save_result,
)
from app.core.store import ModelStore
from tests.conftest import BUNDLED_MODEL, layer_outputs


@pytest.fixture(scope="module")
def mnist():
    return ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn")


@pytest.fixture(scope="module")
def mnist_models(mnist):
    return GradientModels(mnist.engine)


@pytest.fixture(scope="module")
def output_features(mnist_models):
    return layer_features(mnist_models, "Dense_2")


def _logits_written_out(loaded, images: np.ndarray) -> np.ndarray:
    """Dense_2's pre-softmax logits from Dense_1's output and Dense_2's weights (numpy)."""
    import keras

    hidden = np.asarray(keras.Model(loaded.model.inputs, loaded.model.get_layer("Dense_1").output)(images))
    kernel, bias = loaded.model.get_layer("Dense_2").get_weights()
    return hidden @ kernel + bias


def test_each_class_optimal_input_is_classified_as_that_class(mnist, output_features):
    probabilities = np.asarray(mnist.model(output_features.images))
    confident = [int(probabilities[k].argmax() == k and probabilities[k, k] >= 0.9) for k in range(10)]
    assert sum(confident) >= 8, np.round(probabilities.max(axis=1), 3)
    assert not output_features.dead.any() and output_features.kernels is None


def test_optimal_logits_are_far_above_the_grey_start_and_the_test_set_mean(mnist, output_features):
    logits = _logits_written_out(mnist, output_features.images)
    np.testing.assert_allclose(output_features.objective, logits[np.arange(10), np.arange(10)], rtol=1e-4, atol=1e-4)
    test_mean = _logits_written_out(mnist, mnist.images).mean(axis=0)
    start = _logits_written_out(mnist, np.full((1, 28, 28, 1), 0.5, np.float32))[0]
    assert (output_features.objective > start + 10).all()
    assert (output_features.objective > test_mean + 5).all()
    assert (output_features.objective > _logits_written_out(mnist, mnist.images).max(axis=0)).sum() >= 8


def test_conv_units_rise_above_their_test_set_mean_pre_activation(mnist, mnist_models):
    import keras
    import tensorflow as tf

    units = np.array([0, 7, 40, 99])
    pooling = keras.Model(mnist.model.inputs, mnist.model.get_layer("Max_Pool_2").output)
    images, objective, start = optimise_units(mnist_models, "Conv2D_3", units)
    kernel, bias = mnist.model.get_layer("Conv2D_3").get_weights()

    def pre_activation(batch):  # Conv2D_3 written out: its input convolved with its kernel, plus bias
        pooled = layer_outputs(mnist, "Max_Pool_2") if batch is None else np.asarray(pooling(batch))
        return tf.nn.conv2d(pooled, kernel, 1, "VALID").numpy() + bias

    found = pre_activation(images).mean(axis=(1, 2))[np.arange(len(units)), units]
    np.testing.assert_allclose(objective, found, rtol=1e-3, atol=1e-3)
    test_mean = pre_activation(None).mean(axis=(0, 1, 2))[units]
    assert (objective > test_mean).all() and (objective > start + 1.0).all()
    assert images.min() >= 0.0 and images.max() <= 1.0  # clipped to the test set's range


def test_dead_units_are_exactly_those_never_above_zero_on_the_test_set(mnist):
    for layer in ("Conv2D_2", "Conv2D_3", "Dense_1"):
        outputs = layer_outputs(mnist, layer)
        expected = outputs.reshape(-1, outputs.shape[-1]).max(axis=0) == 0
        np.testing.assert_array_equal(dead_units(mnist.engine, layer), expected)
    assert dead_units(mnist.engine, "Dense_1").sum() > 0


def test_a_layer_marks_dead_units_and_leaves_them_grey(tiny_loaded):
    models = GradientModels(tiny_loaded.engine)
    features = layer_features(models, "hidden", Settings(steps=8))
    dead = dead_units(tiny_loaded.engine, "hidden")
    np.testing.assert_array_equal(features.dead, dead)
    assert np.isnan(features.objective[dead]).all() and np.isfinite(features.objective[~dead]).all()
    assert features.images.shape == (4, 6, 6, 1)
    conv = layer_features(models, "conv", Settings(steps=8))
    np.testing.assert_array_equal(conv.kernels, tiny_loaded.model.get_layer("conv").get_weights()[0])
    assert kernels_of(tiny_loaded.engine, "pool") is None


def test_results_round_trip_and_are_keyed_by_every_setting(tmp_path):
    features = LayerFeatures("a/b", np.ones((2, 3, 3, 1), np.float32), np.array([1.0, np.nan], np.float32),
                             np.zeros(2, np.float32), np.array([False, True]), np.zeros((3, 3, 1, 2), np.float32))
    path = result_path(tmp_path, "m", "v1", "a/b", Settings())
    save_result(path, features)
    loaded = load_result(path)
    assert loaded.layer == "a/b" and loaded.dead.tolist() == [False, True]
    np.testing.assert_array_equal(loaded.kernels, features.kernels)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    others = {result_path(tmp_path, "m", "v2", "a/b", Settings()), result_path(tmp_path, "m", "v1", "a/c", Settings()),
              result_path(tmp_path, "m", "v1", "a/b", Settings(steps=64))}
    assert path not in others and len(others) == 3
    assert load_result(tmp_path / "missing.npz") is None
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    assert load_result(tmp_path / "bad.npz") is None


def test_bad_settings_and_units_are_refused(mnist_models):
    for settings in (Settings(steps=0), Settings(learning_rate=0), Settings(jitter=20), Settings(tv=-1)):
        with pytest.raises(InvalidInput):
            settings.check()
    with pytest.raises(InvalidInput):
        optimise_units(mnist_models, "Dense_2", np.array([10]))
