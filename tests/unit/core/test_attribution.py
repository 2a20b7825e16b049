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


def test_nested_models_and_logit_outputs_work(tmp_path):
    import keras

    from app.core.features import optimise_units
    from tests.conftest import tiny_test_set, write_model_folder

    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    backbone_in = keras.Input((6, 6, 1))
    backbone = keras.Model(backbone_in, keras.layers.Conv2D(3, 3, activation="relu", name="conv")(backbone_in),
                           name="backbone")
    inputs = keras.Input((6, 6, 1))
    logits = keras.layers.Dense(3, name="logits")(keras.layers.Flatten(name="flat")(backbone(inputs)))
    images, labels = tiny_test_set()
    write_model_folder(tmp_path, "nested", keras.Model(inputs, logits), images, labels)
    loaded = ModelStore(tmp_path).get("nested")
    models = GradientModels(loaded.engine)
    # a model that outputs logits: they are its output as it is
    np.testing.assert_allclose(models.logits()(images[:4]), loaded.model(images[:4]), rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInput, match="inside a nested model"):
        attribute(models, images[0], "gradcam", 1, "backbone/conv")
    assert attribute(models, images[0], "gradcam", 1, "backbone").values.shape == (4, 4)  # the nested model's output
    ig = attribute(models, images[0], "integrated_gradients", 1, steps=128)
    assert ig.values.sum() == pytest.approx(ig.extras["logit_difference"], rel=0.01, abs=1e-4)
    # the nested conv's pre-activation is reached through the outer graph
    found, objective, start = optimise_units(models, "backbone/conv", np.array([0, 2]))
    kernel, bias = backbone.get_layer("conv").get_weights()
    import tensorflow as tf

    pre = tf.nn.conv2d(found, kernel, 1, "VALID").numpy() + bias
    np.testing.assert_allclose(objective, pre.mean(axis=(1, 2))[[0, 1], [0, 2]], rtol=1e-4, atol=1e-5)
