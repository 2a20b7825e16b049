"""One image through a model is priced from its traced graph: the numbers equal a count by hand, the issue's
UpSampling model is refused by the defaults while real models (the bundled mnist-cnn, MobileNetV2 at 224×224) are
admitted, and a gradient request is priced and split into batches before it starts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from app.core.activations import ActivationEngine
from app.core.model_cost import (
    DEFAULT_MODEL_LIMITS,
    ModelLimits,
    OverBudget,
    check_model,
    model_cost,
    plan_gradient_work,
)
from app.core.store import ModelStore
from tests.conftest import BUNDLED_MODEL
from tests.hostile_models import upsampling_model


def cost_of(model, shape=None):
    shape = shape or tuple(model.inputs[0].shape[1:])
    engine = ActivationEngine(model, np.zeros((1, *shape), np.float32), "m")
    return model_cost(model, engine.graph)


def test_a_small_model_costs_what_a_count_by_hand_says():
    keras.backend.clear_session()
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)  # 6×6×4
    x = keras.layers.MaxPooling2D(2, name="pool")(x)  # 3×3×4
    x = keras.layers.Flatten(name="flat")(x)  # 36
    outputs = keras.layers.Dense(5, activation="softmax", name="dense")(x)
    cost = cost_of(keras.Model(inputs, outputs))
    assert [layer.name for layer in cost.layers] == ["conv", "pool", "flat", "dense"]
    assert [layer.output_shape for layer in cost.layers] == [(6, 6, 4), (3, 3, 4), (36,), (5,)]
    assert cost.activation_bytes == 4 * (64 + 144 + 36 + 36 + 5)
    assert cost.parameters == (3 * 3 * 1 + 1) * 4 + (36 + 1) * 5
    conv = 2 * (3 * 3 * 1 * 4) * 36 + 144  # a multiply-add per kernel weight at each of 6×6 positions, + ReLU
    dense = 2 * 36 * 5 + 5
    assert [layer.flops for layer in cost.layers] == [conv, 36, 36, dense]
    assert cost.flops == conv + 36 + 36 + dense
    cut = cost.until("pool")  # what a gradient up to the pooling layer costs
    assert (cut.activation_bytes, cut.flops, cut.parameters) == (4 * (64 + 144 + 36), conv + 36, 40)


def test_the_upsampling_model_is_refused_naming_its_conv_layer():
    keras.backend.clear_session()
    cost = cost_of(upsampling_model())
    conv_values = 2800 * 2800 * 32
    assert cost.layer("conv").activations == conv_values
    assert cost.activation_bytes == 4 * (28 * 28 + 2800 * 2800 + conv_values + 32 + 10)  # 1.03 GB
    problems = check_model(cost)
    assert len(problems) == 1
    assert "1.0 GB of activations, the limit is 400.0 MB (MODEL_ACTIVATION_MB): conv (Conv2D)" in problems[0]
    assert "2800×2800×32 = 250,880,000 values" in problems[0]
    assert check_model(cost, ModelLimits(max_activation_bytes=2 * 10**9)) == []
    assert "MODEL_GFLOPS" in check_model(cost, ModelLimits(max_activation_bytes=2 * 10**9, max_flops=10**9))[0]


def test_real_models_are_admitted_by_the_defaults_with_margin():
    keras.backend.clear_session()
    mnist = ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn")
    assert mnist.cost is not None and mnist.cost.parameters == mnist.model.count_params()
    mobilenet = cost_of(keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10))
    assert mobilenet.parameters == 2_270_794
    assert 80e6 < mobilenet.activation_bytes < 100e6 and 0.55e9 < mobilenet.flops < 0.7e9  # 87.3 MB, 0.62 GFLOP
    for cost in (mnist.cost, mobilenet):
        assert check_model(cost) == []
        assert cost.activation_bytes * 4 < DEFAULT_MODEL_LIMITS.max_activation_bytes
        assert cost.flops * 10 < DEFAULT_MODEL_LIMITS.max_flops
        plan_gradient_work(cost, 513, "integrated gradients with 512 steps")  # MobileNetV2: 1.0 TFLOP of 2


def test_a_gradient_request_is_priced_and_batched_before_it_starts():
    keras.backend.clear_session()
    cost = cost_of(upsampling_model())
    one = cost.gradient_bytes(1)  # 4 × 1.03 GB
    limits = ModelLimits(gradient_memory_bytes=3 * one, gradient_flops=100 * cost.gradient_flops(1))
    plan = plan_gradient_work(cost, 33, "SmoothGrad with 32 samples", limits)
    assert (plan.images, plan.batch, plan.flops) == (33, 3, 33 * 3 * cost.flops)
    assert plan_gradient_work(cost, 2, "x", limits).batch == 2
    with pytest.raises(OverBudget, match=r"integrated gradients with 512 steps would cost .* TFLOP \(513 images × 3 "
                                         r"× 4\.\d GFLOP per image\), the limit is .* \(GRADIENT_GFLOPS\): this model "
                                         r"allows 100 images per request"):
        plan_gradient_work(cost, 513, "integrated gradients with 512 steps", limits)
    with pytest.raises(OverBudget, match=r"the gradient needs 4\.1 GB of activations per image .* "
                                         r"\(GRADIENT_MEMORY_MB\)"):
        plan_gradient_work(cost, 1, "the gradient")
