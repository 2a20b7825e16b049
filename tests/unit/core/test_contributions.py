"""MLP contributions: activation x weight plus bias adds up to the model's own logits."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.activations import softmax
from app.core.contributions import contribution_layers, contributions, logit_layers
from app.core.errors import InvalidInput
from app.core.store import ModelStore
from tests.conftest import build_tiny_model, layer_outputs, tiny_test_set, write_model_folder


def test_contributions_add_up_to_the_logit_computed_with_numpy(tiny_loaded):
    image = 5
    result = contributions(tiny_loaded, "hidden", image, (2, 0))
    kernel, bias = tiny_loaded.model.get_layer("output").get_weights()
    # independent forward pass in numpy from the weights: conv -> pool -> flatten -> hidden -> output logits
    hidden_kernel, hidden_bias = tiny_loaded.model.get_layer("hidden").get_weights()
    flat = layer_outputs(tiny_loaded, "flat")[image]
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
    result = contributions(loaded, "h", 1, (0, 1))
    kernel, bias = loaded.model.get_layer("out").get_weights()
    hidden = loaded.engine.activations("h", 1)
    np.testing.assert_allclose(result.logits, (hidden @ kernel + bias)[[0, 1]], rtol=1e-5, atol=1e-5)
    assert contribution_layers(loaded) == ["flat", "h", "drop"]  # dropout output feeds "out" too
    # the MLP view of classes offers only what feeds the output layer: Flatten feeds the hidden layer "h"
    assert logit_layers(loaded) == ["h", "drop"]


def test_contributions_refuse_layers_that_break_the_linear_relation(tmp_path, tiny_loaded):
    import keras

    loaded = _model_with(tmp_path, "batchnorm", [keras.layers.BatchNormalization(name="bn")])
    with pytest.raises(InvalidInput, match="not the identity"):
        contributions(loaded, "h", 0, (0, 1))
    with pytest.raises(InvalidInput, match="not followed by a Dense"):
        contributions(tiny_loaded, "output", 0, (0, 1))
    with pytest.raises(InvalidInput, match="vector layer"):
        contributions(tiny_loaded, "conv", 0, (0, 1))
    with pytest.raises(InvalidInput, match="out of range"):
        contributions(tiny_loaded, "hidden", 0, (0, 3))


def test_contributions_in_a_functional_model(tmp_path):
    import keras

    keras.backend.clear_session()
    images, labels = tiny_test_set(6)
    write_model_folder(tmp_path, "functional", build_tiny_model(functional=True), images, labels)
    loaded = ModelStore(tmp_path).get("functional")
    result = contributions(loaded, "hidden", 2, (1, 2))
    np.testing.assert_allclose(softmax(result.all_logits), loaded.engine.probabilities(2), atol=1e-5)
