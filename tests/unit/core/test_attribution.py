"""Attribution maps checked against computations written out here with GradientTape and numpy."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.activations import softmax
from app.core.attribution import (
    METHODS,
    GradientModels,
    attribute,
    gradcam,
    gradient,
    integrated_gradients,
    pre_activation,
    strips_activation,
)
from app.core.errors import InvalidInput
from app.core.store import ModelStore
from tests.conftest import BUNDLED_MODEL


@pytest.fixture(scope="module")
def mnist():
    return ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn")


@pytest.fixture
def tiny_models(tiny_loaded):
    return GradientModels(tiny_loaded.engine)


def test_logits_are_the_softmax_layers_input(tiny_loaded, tiny_models):
    images = tiny_loaded.images[:5]
    logits = np.asarray(tiny_models.logits()(images))
    hidden_kernel, hidden_bias = tiny_loaded.model.get_layer("hidden").get_weights()
    kernel, bias = tiny_loaded.model.get_layer("output").get_weights()
    import keras

    flat = np.asarray(keras.Model(tiny_loaded.model.inputs, tiny_loaded.model.get_layer("flat").output)(images))
    expected = np.maximum(flat @ hidden_kernel + hidden_bias, 0) @ kernel + bias
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(softmax(logits), tiny_loaded.engine.predictions()[:5], atol=1e-5)


def test_gradcam_equals_a_gradient_tape_computation(tiny_loaded, tiny_models):
    import keras
    import tensorflow as tf

    model, image, target = tiny_loaded.model, tiny_loaded.images[4], 2
    # written out: conv maps and the output layer's pre-softmax logit, gradient of one w.r.t. the other
    conv_model = keras.Model(model.inputs, model.get_layer("conv").output)
    hidden_kernel, hidden_bias = model.get_layer("hidden").get_weights()
    kernel, bias = model.get_layer("output").get_weights()
    with tf.GradientTape() as tape:
        maps = conv_model(image[np.newaxis])
        tape.watch(maps)
        pooled = tf.nn.max_pool2d(maps, 2, 2, "VALID")
        hidden = tf.nn.relu(tf.reshape(pooled, (1, -1)) @ hidden_kernel + hidden_bias)
        logit = (hidden @ kernel + bias)[0, target]
    grads = tape.gradient(logit, maps)[0].numpy()
    weights = grads.mean(axis=(0, 1))
    expected = np.maximum((maps[0].numpy() * weights).sum(axis=-1), 0)

    result = gradcam(tiny_models, image, target, "conv")
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-6)
    assert result.map.shape == image.shape[:2] and result.logit == pytest.approx(float(logit), rel=1e-5)


def test_gradient_is_the_logits_gradient(tiny_loaded, tiny_models):
    import tensorflow as tf

    image = tf.constant(tiny_loaded.images[1:2])
    with tf.GradientTape() as tape:
        tape.watch(image)
        logit = tiny_models.logits()(image)[0, 1]
    expected = tape.gradient(logit, image)[0].numpy()
    result = gradient(tiny_models, tiny_loaded.images[1], 1)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.map, np.abs(expected).max(axis=-1))


def test_integrated_gradients_sum_to_the_logit_difference_to_black(mnist):
    models = GradientModels(mnist.engine)
    for index in (0, 7, 42, 123, 500):
        label = int(mnist.labels[index])
        result = integrated_gradients(models, mnist.images[index], label)
        logits = np.asarray(models.logits()(np.stack([np.zeros_like(mnist.images[index]), mnist.images[index]])))
        difference = logits[1, label] - logits[0, label]
        assert result.extras["logit_difference"] == pytest.approx(difference, rel=1e-4)
        assert result.values.sum() == pytest.approx(difference, rel=0.01)
        assert result.extras["attribution_sum"] == pytest.approx(result.values.sum(), rel=1e-4)


def test_every_method_gives_a_finite_map_of_the_input_size(mnist):
    models = GradientModels(mnist.engine)
    for method in METHODS:
        result = attribute(models, mnist.images[3], method, 4)
        assert result.map.shape == (28, 28) and np.isfinite(result.map).all()
        assert result.class_index == 4
    assert attribute(models, mnist.images[3], "gradcam", 4, "Conv2D_2").extras["layer"] == "Conv2D_2"


def test_bad_requests_are_refused(mnist):
    models = GradientModels(mnist.engine)
    image = mnist.images[0]
    for kwargs in ({"method": "lime"}, {"method": "gradcam", "layer_name": "Dense_1"},
                   {"method": "smoothgrad", "samples": 0}, {"method": "smoothgrad", "noise": 2.0},
                   {"method": "integrated_gradients", "steps": 10**6}):
        with pytest.raises(InvalidInput):
            attribute(models, image, class_index=1, **{"method": "gradient", **kwargs})


def test_pre_activation_equals_the_layer_with_a_linear_activation():
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    relu_conv = keras.layers.Conv2D(3, 3, activation="relu")
    relu_dense = keras.layers.Dense(4, activation="softmax")
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 2)).astype(np.float32)
    relu_conv(x), relu_dense(x[:, 0, 0])
    linear_conv = keras.layers.Conv2D(3, 3)
    linear_dense = keras.layers.Dense(4)
    linear_conv(x), linear_dense(x[:, 0, 0])
    linear_conv.set_weights(relu_conv.get_weights())
    linear_dense.set_weights(relu_dense.get_weights())
    assert strips_activation(relu_conv) and not strips_activation(linear_conv)
    np.testing.assert_allclose(pre_activation(relu_conv, x), linear_conv(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pre_activation(relu_dense, x[:, 0, 0]), linear_dense(x[:, 0, 0]), rtol=1e-5,
                               atol=1e-6)
