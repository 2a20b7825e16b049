"""Attribution maps checked against computations written out here with GradientTape and numpy."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.activations import softmax
from app.core.attribution import (
    METHODS,
    GradientModels,
    attribute,
    default_cam_layer,
    gradcam,
    gradient,
    integrated_gradients,
    pre_activation,
    strips_activation,
    upsample,
)
from app.core.errors import InvalidInput
from app.core.layer_graph import LayerInfo
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


def test_grad_cam_defaults_to_the_last_conv_layer_with_maps_of_real_resolution(mnist):
    # mnist-cnn: Conv2D_3 (the last map layer) is 3×3 and Max_Pool_2 5×5; Conv2D_2 is the last one ≥ 7×7
    name = default_cam_layer(mnist.engine)
    info = mnist.engine.layer(name)
    assert name == "Conv2D_2" and info.output_shape[:2] == (11, 11)
    result = attribute(GradientModels(mnist.engine), mnist.images[3], "gradcam", 4)
    assert result.extras["layer"] == "Conv2D_2" and result.values.shape == (11, 11)


def _engine(*layers: tuple[str, str, tuple[int, ...]]):
    class Engine:
        pass

    engine = Engine()
    engine.layers = [LayerInfo(*layer) for layer in layers]
    return engine


def test_grad_cams_default_falls_back_to_any_fine_layer_then_to_the_largest_maps():
    # a conv layer is preferred to a pooling layer after it that is still fine enough
    assert default_cam_layer(_engine(("c1", "Conv2D", (14, 14, 8)), ("p1", "MaxPooling2D", (7, 7, 8)),
                                     ("c2", "Conv2D", (5, 5, 8)), ("d", "Dense", (10,)))) == "c1"
    assert default_cam_layer(_engine(("c1", "Conv2D", (16, 16, 8)), ("c2", "Conv2D", (8, 8, 8)),
                                     ("p1", "MaxPooling2D", (8, 8, 8)), ("c3", "Conv2D", (2, 2, 8)))) == "c2"
    # no conv layer is fine enough, another map layer is
    assert default_cam_layer(_engine(("c1", "Conv2D", (4, 4, 8)), ("up", "UpSampling2D", (8, 8, 8)))) == "up"
    # nothing 7×7 or more: the layer with the most positions (the tiny model's 4×4 conv, not its 2×2 pool)
    assert default_cam_layer(_engine(("conv", "Conv2D", (4, 4, 2)), ("pool", "MaxPooling2D", (2, 2, 2)))) == "conv"
    # a layer inside a nested model cannot be used; a model without maps has no default
    assert default_cam_layer(_engine(("outer/conv", "Conv2D", (9, 9, 2)),
                                     ("pool", "MaxPooling2D", (3, 3, 2)))) == "pool"
    assert default_cam_layer(_engine(("flat", "Flatten", (12,)), ("out", "Dense", (3,)))) is None


def bilinear(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize written out: output pixel centres mapped onto the input (half-pixel centres), clamped to its
    edges, each value blended from its four neighbours."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        source = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, n_in - 1), source - low

    top, bottom, down = axis(coarse.shape[0], size[0])
    left, right, across = axis(coarse.shape[1], size[1])
    upper = coarse[top][:, left] * (1 - across) + coarse[top][:, right] * across
    lower = coarse[bottom][:, left] * (1 - across) + coarse[bottom][:, right] * across
    return upper * (1 - down[:, None]) + lower * down[:, None]


def test_grad_cams_map_is_upsampled_smoothly_not_in_blocks():
    checker = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    smooth = upsample(checker, (28, 28))
    assert smooth.shape == (28, 28)
    np.testing.assert_allclose(smooth, bilinear(checker, (28, 28)), atol=1e-6)
    # blocks would hold only 0 and 1; a bilinear blend passes through the values between them
    middle = smooth[(smooth > 0.05) & (smooth < 0.95)]
    assert middle.size > 28 * 28 // 4 and len(np.unique(np.round(smooth, 4))) > 10
    assert smooth[0, 0] == pytest.approx(0.0) and smooth[0, -1] == pytest.approx(1.0)  # the corners keep theirs
    assert smooth[13, 13] == pytest.approx(0.5, abs=0.05)  # the centre is halfway
    coarse = np.random.default_rng(0).random((11, 11), dtype=np.float32)
    np.testing.assert_allclose(upsample(coarse, (28, 28)), bilinear(coarse, (28, 28)), atol=1e-5)


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
    # a map's objective is its centre neuron: (2, 2) of the 4x4 maps
    np.testing.assert_allclose(objective, pre[:, 2, 2][[0, 1], [0, 2]], rtol=1e-4, atol=1e-5)
