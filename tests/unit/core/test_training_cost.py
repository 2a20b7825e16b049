"""The cost estimate agrees with the model build_model makes; the budget refuses the issue's hostile configs."""

from __future__ import annotations

import pytest

from app.core.errors import InvalidInput
from app.core.training import ConfigError, build_model, conv_layer_names, parse_config
from app.core.training_cost import BACKWARD_FACTOR, DEFAULT_LIMITS, CostLimits, check_budget, estimate

CONFIGS = [
    ({}, (28, 28, 1)),  # the blog's
    ({"conv_layers": [{"filters": 6, "kernel": 5}, {"filters": 10, "kernel": 3}], "pool_size": 3,
      "dense_layers": []}, (28, 28, 1)),
    ({"conv_layers": [{"filters": 8, "kernel": 1}, {"filters": 16, "kernel": 3}], "pool_size": 0,
      "dense_layers": [{"units": 32}, {"units": 16}, {"units": 8}]}, (12, 12, 1)),
    ({"conv_layers": [{"filters": 8}, {"filters": 12, "kernel": 5}, {"filters": 4}], "pool_size": 2,
      "dense_layers": [{"units": 20}, {"units": 10}]}, (32, 32, 3)),
    ({"conv_layers": [{"filters": 3, "kernel": 3}, {"filters": 5, "kernel": 3}, {"filters": 7, "kernel": 2}],
      "pool_size": 3, "dense_layers": [{"units": 4}]}, (28, 28, 3)),  # shrinks to 1x1 at the last conv
    ({"conv_layers": [{"filters": 2, "kernel": 11}], "pool_size": 4, "dense_layers": []}, (11, 11, 1)),
]


@pytest.fixture(autouse=True)
def fresh_keras_session():
    yield
    import keras

    keras.backend.clear_session()


@pytest.mark.parametrize(("raw", "input_shape"), CONFIGS)
def test_estimate_matches_the_built_model(raw, input_shape):
    config = parse_config({"name": "t", **raw})
    cost = estimate(config, input_shape, 7)
    model = build_model(config, input_shape, 7)
    assert [layer.name for layer in cost.layers] == [layer.name for layer in model.layers] == conv_layer_names(config)
    assert [layer.kind for layer in cost.layers] == [type(layer).__name__ for layer in model.layers]
    for predicted, layer in zip(cost.layers, model.layers, strict=True):
        assert predicted.output_shape == tuple(layer.output.shape[1:]), predicted.name
        assert predicted.parameters == layer.count_params(), predicted.name
    assert cost.parameters == model.count_params()


def test_blog_config_numbers_and_margin():
    cost = estimate(parse_config({}), (28, 28, 1), 10, train_images=60_000)  # Fashion-MNIST's training set
    assert cost.parameters == 208_982  # the blog's summary
    assert cost.layer("Conv2D_1").flops == 2 * 26 * 26 * 32 * 9  # 3x3 kernels on one channel
    assert cost.layer("Dense_1").flops == 2 * 1152 * 100
    forward = 28 * 28 + 26 * 26 * 32 + 13 * 13 * 32 + 11 * 11 * 64 + 5 * 5 * 64 + 3 * 3 * 128 + 100 + 10  # no Flatten
    assert cost.activation_bytes == forward * 4 * 64 * BACKWARD_FACTOR
    assert cost.flops_per_epoch == 3 * cost.flops_per_image * 60_000
    assert check_budget(cost) == []
    # with margin: the blog's run uses a small part of every limit
    assert cost.parameters * 20 < DEFAULT_LIMITS.max_parameters
    assert cost.activation_bytes * 20 < DEFAULT_LIMITS.max_activation_bytes
    assert cost.flops_per_epoch * 20 < DEFAULT_LIMITS.max_flops_per_epoch
    assert check_budget(estimate(parse_config({"batch_size": 1024}), (28, 28, 1), 10)) == []


HOSTILE = {"conv_layers": [{"filters": 512, "kernel": 1}] * 6, "pool_size": 0, "dense_layers": [{"units": 4096}] * 4}


@pytest.mark.parametrize("batch_size", [8, 64, 512, 4096])
def test_the_issues_hostile_config_is_refused_naming_layers(batch_size):
    cost = estimate(parse_config({**HOSTILE, "batch_size": batch_size}), (28, 28, 1), 10)
    problems = check_budget(cost)
    assert problems[0].startswith("the model would have 1,695,870,474 parameters, the cap is 5,000,000: ")
    assert "Dense_1 alone has 1,644,171,264 (401,408 inputs × 4,096 units)" in problems[0]
    assert any(p.startswith("one epoch over 70,000 images would take") and "Dense_1" in p for p in problems)
    if batch_size >= 64:
        assert any(
            p.startswith(f"Conv2D_1 outputs 28×28×512 = 401,408 values per image; at batch {batch_size} ")
            for p in problems
        )


def test_hostile_convolutions_under_the_parameter_cap_are_refused_by_memory_or_time():
    raw = {"conv_layers": [{"filters": 512, "kernel": 1}] * 4, "pool_size": 0, "dense_layers": []}
    small_batch = check_budget(estimate(parse_config({**raw, "batch_size": 8}), (28, 28, 1), 10, 60_000))
    assert len(small_batch) == 1
    assert "223.6 TFLOP, the limit is 30.0 TFLOP: Conv2D_2 costs the most, 411.0 MFLOP per image" in small_batch[0]
    big_batch = check_budget(estimate(parse_config({**raw, "batch_size": 512}), (28, 28, 1), 10, 60_000))
    assert any("at batch 512 the activations of all layers need 13.2 GB to train, the limit is 1.0 GB" in p
               for p in big_batch)


def test_limits_are_configurable():
    cost = estimate(parse_config({}), (28, 28, 1), 10)
    assert len(check_budget(cost, CostLimits(max_parameters=1000, max_activation_bytes=1000,
                                             max_flops_per_epoch=1000))) == 3


@pytest.mark.parametrize(
    ("raw", "input_shape", "message"),
    [({"conv_layers": [{"kernel": 11}] * 3, "pool_size": 0}, (28, 28, 1),
      r"conv layer 3 \(kernel 11\) leaves no pixels of the input"),
     ({"conv_layers": [{"kernel": 3}] * 2, "pool_size": 4}, (5, 5, 1), "pooling after conv layer 1 leaves no pixels")],
)
def test_shrinking_configs_get_build_models_sentence(raw, input_shape, message):
    config = parse_config(raw)
    with pytest.raises(InvalidInput, match=message):
        estimate(config, input_shape, 10)
    with pytest.raises(ConfigError, match=message):
        build_model(config, input_shape, 10)
