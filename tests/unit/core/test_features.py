"""Feature visualisation: optimal inputs do what they claim, checked against computations written out here."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.attribution import GradientModels
from app.core.errors import InvalidInput
from app.core.features import (
    PLAIN_SETTINGS,
    SEGMENT_STEPS,
    LayerFeatures,
    Settings,
    dead_units,
    kernels_of,
    layer_features,
    load_result,
    optimise_units,
    parameter_images,
    random_transforms,
    result_path,
    save_result,
    spectrum_scale,
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
    """The objective of a map is its centre neuron's pre-activation (Conv2D_3's maps are 3x3: position (1, 1))."""
    import keras
    import tensorflow as tf

    units = np.array([0, 7, 40, 99])
    pooling = keras.Model(mnist.model.inputs, mnist.model.get_layer("Max_Pool_2").output)
    images, objective, start = optimise_units(mnist_models, "Conv2D_3", units)
    kernel, bias = mnist.model.get_layer("Conv2D_3").get_weights()

    def pre_activation(batch):  # Conv2D_3 written out: its input convolved with its kernel, plus bias
        pooled = layer_outputs(mnist, "Max_Pool_2") if batch is None else np.asarray(pooling(batch))
        return tf.nn.conv2d(pooled, kernel, 1, "VALID").numpy() + bias

    found = pre_activation(images)[:, 1, 1][np.arange(len(units)), units]
    np.testing.assert_allclose(objective, found, rtol=1e-3, atol=1e-3)
    test_mean = pre_activation(None)[:, 1, 1].mean(axis=0)[units]
    assert (objective > test_mean).all() and (objective > start + 1.0).all()
    assert images.min() >= 0.0 and images.max() <= 1.0  # squashed into the test set's range


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


def _total_variation(images: np.ndarray) -> np.ndarray:
    """Mean absolute difference of neighbouring pixels, per image."""
    return (np.abs(np.diff(images, axis=1)).mean(axis=(1, 2, 3))
            + np.abs(np.diff(images, axis=2)).mean(axis=(1, 2, 3)))


def _high_frequency_share(images: np.ndarray) -> np.ndarray:
    """Per image, the share of the spectrum's energy (mean removed) above a quarter of the sampling rate."""
    spectrum = np.abs(np.fft.fft2(images[..., 0] - images[..., 0].mean(axis=(1, 2), keepdims=True))) ** 2
    rows, cols = np.meshgrid(np.fft.fftfreq(images.shape[1]), np.fft.fftfreq(images.shape[2]), indexing="ij")
    high = np.sqrt(rows**2 + cols**2) > 0.25
    return spectrum[:, high].sum(axis=1) / spectrum.sum(axis=(1, 2))


def test_the_regularised_optimum_of_a_tiny_conv_beats_mean_and_random_inputs(tiny_loaded):
    """The tiny model's conv (3x3 kernels on 6x6 images, 4x4 maps): its centre neuron (2, 2) written out in numpy
    is higher at the regularised optimum than at the test set's mean image and at any of 64 random images."""
    models = GradientModels(tiny_loaded.engine)
    kernel, bias = tiny_loaded.model.get_layer("conv").get_weights()

    def centre_neuron(images):  # valid conv at output (2, 2) reads input rows and columns 2-4
        return np.einsum("bijc,ijcu->bu", images[:, 2:5, 2:5, :], kernel) + bias

    units = np.array([0, 1])
    images, objective, start = optimise_units(models, "conv", units, Settings(steps=64))
    np.testing.assert_allclose(objective, centre_neuron(images)[np.arange(2), units], rtol=1e-4, atol=1e-4)
    mean_image = tiny_loaded.images.mean(axis=0, keepdims=True)
    random_images = np.random.default_rng(0).random((64, 6, 6, 1), dtype=np.float32)
    assert (objective > centre_neuron(mean_image)[0, units]).all()
    assert (objective > centre_neuron(random_images)[:, units].max(axis=0)).all()
    assert (objective > start).all()


def test_regularised_optima_are_smoother_than_plain_ones_and_still_activate(mnist, mnist_models):
    """Conv2D_2 and Dense_2 of mnist-cnn: the regularised optimum has less than 60 % of the plain ascent's total
    variation and less high-frequency energy, while its objective (recomputed by the model itself) stays far above
    the test set's best mean image's."""
    import keras

    for layer, units in (("Conv2D_2", np.arange(8)), ("Dense_2", np.arange(10))):
        regular, objective, _ = optimise_units(mnist_models, layer, units)
        plain, plain_objective, _ = optimise_units(mnist_models, layer, units, PLAIN_SETTINGS)
        assert (_total_variation(regular) < 0.6 * _total_variation(plain)).all(), layer
        assert (_high_frequency_share(regular) < _high_frequency_share(plain)).all(), layer
        live = plain_objective > 0.5  # Conv2D_2's units 0 and 5 barely rise at all
        model = keras.Model(mnist.model.inputs, mnist.model.get_layer(layer).input if layer == "Dense_2"
                            else mnist.model.get_layer(layer).output)
        if layer == "Dense_2":
            kernel, bias = mnist.model.get_layer("Dense_2").get_weights()
            recomputed = (np.asarray(model(regular)) @ kernel + bias)[np.arange(10), units]
        else:
            recomputed = np.asarray(model(regular))[:, 5, 5][np.arange(8), units]
            live &= recomputed > 0  # the ReLU output equals the pre-activation where it is positive
            np.testing.assert_allclose(objective[live], recomputed[live], rtol=1e-3, atol=1e-3)
        if layer == "Dense_2":
            np.testing.assert_allclose(objective, recomputed, rtol=1e-3, atol=1e-3)
        assert (objective[live] > 0.4 * plain_objective[live]).all(), (layer, objective, plain_objective)


def test_the_optimisation_is_deterministic_under_its_seed_and_reports_every_segment(tiny_loaded):
    models = GradientModels(tiny_loaded.engine)
    reports = []
    settings = Settings(steps=40)
    first, _, _ = optimise_units(models, "hidden", np.arange(4), settings,
                                 lambda done, total, what: reports.append((done, total, what)))
    again, _, _ = optimise_units(models, "hidden", np.arange(4), settings)
    other, _, _ = optimise_units(models, "hidden", np.arange(4), Settings(steps=40, seed=1))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3
    segments = -(-settings.steps // SEGMENT_STEPS)
    assert [done for done, _, _ in reports] == [min((i + 1) * SEGMENT_STEPS, 40) for i in range(segments)]
    assert {total for _, total, _ in reports} == {40} and reports[-1][2] == "4 units at once"


def test_spectra_map_to_images_as_written_out():
    """A spectrum with only its constant term is a flat image at sigmoid(term * scale / pixel count); a flat
    spectrum's scale is sqrt(pixel count) at every frequency; transforms at zero strength are the identity."""
    scale = spectrum_scale(6, 8, 0.0)
    np.testing.assert_allclose(scale, np.sqrt(48), rtol=1e-6)
    decayed = spectrum_scale(6, 8, 1.0)
    assert decayed[0, 0] == decayed.max() and decayed[3, 4] == decayed.min()
    np.testing.assert_allclose(np.sqrt(np.mean(decayed**2)), np.sqrt(48), rtol=1e-5)
    params = np.zeros((1, 1, 6, 5, 2), np.float32)
    params[0, 0, 0, 0, 0] = 2.0
    image = parameter_images(params, 8, scale, 0.0, 1.0)
    assert image.shape == (1, 6, 8, 1)
    np.testing.assert_allclose(image, 1 / (1 + np.exp(-2.0 * np.sqrt(48) / 48)), rtol=1e-6)
    identity = random_transforms(np.random.default_rng(0), 3, 6, 8, PLAIN_SETTINGS)
    np.testing.assert_allclose(identity, np.tile([1, 0, 0, 0, 1, 0, 0, 0], (3, 1)), atol=1e-6)
    moved = random_transforms(np.random.default_rng(0), 100, 6, 8, Settings(rotate=10, scale=0.1, jitter=2))
    determinant = moved[:, 0] * moved[:, 4] - moved[:, 1] * moved[:, 3]  # 1 / zoom**2
    assert (determinant > 1 / 1.1**2 - 1e-6).all() and (determinant < 1 / 0.9**2 + 1e-6).all()
