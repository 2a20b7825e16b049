"""Training configuration checks, the blog's architecture, and a real short run with an observer."""

import keras
import numpy as np
import pytest

from app.core.datasets import Dataset
from app.core.training import (
    ConfigError,
    TrainingObserver,
    build_model,
    conv_layer_names,
    epoch_position,
    feature_map_sizes,
    is_partial,
    parse_config,
    shrink_problem,
    train,
)


def test_defaults_are_the_blogs_run():
    config = parse_config({"name": "blog"})
    model = build_model(config, (28, 28, 1), 10)
    names = [layer.name for layer in model.layers]
    assert names == conv_layer_names(config) == [
        "Conv2D_1", "Max_Pool_1", "Conv2D_2", "Max_Pool_2", "Conv2D_3", "Flatten", "Dense_1", "Dense_2"
    ]
    assert model.get_layer("Conv2D_3").output.shape[1:] == (3, 3, 128)
    assert model.count_params() == 208_982  # the blog's summary
    assert config.optimizer == "rmsprop" and config.lr_schedule == "power" and config.batch_size == 64


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"epochs": 0}, "epochs must be between 1 and 500"),
        ({"epochs": "5"}, "epochs must be an integer"),
        ({"batch_size": 100000}, "batch_size must be between"),
        ({"optimizer": "adagrad"}, "optimizer must be one of"),
        ({"name": "../x"}, "invalid model name"),
        ({"learning_rat": 0.1}, "unknown settings: learning_rat"),
        ({"conv_layers": []}, "conv_layers must be a list of 1 to 6"),
        ({"conv_layers": [{"filters": 0}]}, "conv layer 1 filters"),
        ({"dense_layers": [{"units": 10, "activation": "gelu"}]}, "dense layer 1 activation"),
    ],
)
def test_invalid_configs_are_explained(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert any(message in error for error in info.value.errors), info.value.errors


def test_too_many_parameters_or_shrinking_image_is_refused():
    with pytest.raises(ConfigError, match="parameters"):
        build_model(parse_config({"dense_layers": [{"units": 4096}, {"units": 4096}]}), (28, 28, 1), 10)
    with pytest.raises(ConfigError, match="leaves no pixels"):
        build_model(parse_config({"conv_layers": [{"kernel": 11}] * 3}), (28, 28, 1), 10)


def tiny_dataset(n_train=64, n_test=16):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n_train + n_test)
    images = rng.random((n_train + n_test, 12, 12, 1), dtype=np.float32) * 0.2
    images[np.arange(len(labels)), labels * 4, :, 0] = 1.0  # the class is a bright row
    return Dataset("tiny", images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], ["a", "b", "c"])


class Recorder(TrainingObserver):
    def __init__(self, stop_after_batches=None):
        self.events = []
        self.batches = 0
        self.stop_after_batches = stop_after_batches

    def on_train_begin(self, epochs, batches_per_epoch):
        self.events.append(("begin", epochs, batches_per_epoch))

    def on_batch_end(self, epoch, batch, batches_per_epoch):
        self.batches += 1

    def on_epoch_end(self, epoch, metrics, probe):
        self.events.append(("epoch", epoch, metrics, probe))

    def should_stop(self):
        return self.stop_after_batches is not None and self.batches >= self.stop_after_batches


SMALL = {"name": "t", "conv_layers": [{"filters": 4}, {"filters": 4}], "dense_layers": [{"units": 8}],
         "batch_size": 16, "epochs": 2, "probe_image": 1, "probe_layer": "Conv2D_1"}


def test_short_run_reports_every_epoch_with_probe():
    recorder = Recorder()
    result = train(parse_config(SMALL), recorder, tiny_dataset())
    begin, *epochs = recorder.events
    assert begin == ("begin", 2, 4) and recorder.batches == 8
    assert [event[1] for event in epochs] == [1, 2]
    for _, _, metrics, probe in epochs:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"} <= set(metrics)
        assert probe["layer"] == "Conv2D_1" and probe["activations"].shape == (10, 10, 4)
        np.testing.assert_allclose(probe["probabilities"].sum(), 1, rtol=1e-5)
    assert epochs[1][2]["learning_rate"] < 0.001  # inverse-time decay is applied
    assert len(result.history) == 2 and not result.stopped
    assert 0 <= result.metrics["test_accuracy"] <= 1
    meta = result.meta(parse_config(SMALL))
    assert meta["class_names"] == ["a", "b", "c"] and meta["epochs_completed"] == 2


def test_stop_takes_effect_at_the_next_batch_and_marks_the_cut_epoch_partial():
    recorder = Recorder(stop_after_batches=6)  # 4 batches per epoch: epoch 2 is cut after 2 of them
    result = train(parse_config({**SMALL, "epochs": 5}), recorder, tiny_dataset())
    assert result.stopped and recorder.batches == 6
    full, cut = result.history
    assert (full["epoch"], full["batches"], full["batches_per_epoch"], full["partial"]) == (1, 4, 4, False)
    assert (cut["epoch"], cut["batches"], cut["batches_per_epoch"], cut["partial"]) == (2, 2, 4, True)
    assert [is_partial(row) for row in result.history] == [False, True]
    assert [epoch_position(row) for row in result.history] == [1.0, 1.5]
    assert result.meta(parse_config(SMALL))["epochs_completed"] == 1


def test_a_stop_at_an_epochs_last_batch_leaves_no_partial_epoch():
    recorder = Recorder(stop_after_batches=4)
    result = train(parse_config({**SMALL, "epochs": 5}), recorder, tiny_dataset())
    assert result.stopped and [row["partial"] for row in result.history] == [False]


def test_rows_recorded_before_rows_said_how_much_they_cover_count_as_full():
    assert not is_partial({"epoch": 3, "loss": 0.1}) and epoch_position({"epoch": 3, "loss": 0.1}) == 3.0


ONE_BY_ONE = {"filters": 2, "kernel": 1}
SHAPES = [  # (config, image shape, the layer Keras cannot build or None)
    ({}, (28, 28, 1), None),  # the blog's
    ({"conv_layers": [ONE_BY_ONE] * 5, "pool_size": 2}, (28, 28, 1), None),  # 28 14 7 3 1: just fits
    ({"conv_layers": [ONE_BY_ONE] * 6, "pool_size": 2}, (28, 28, 1), "Max_Pool_5"),  # too many poolings
    ({"conv_layers": [{"filters": 2}] * 4, "pool_size": 2}, (28, 28, 1), "Conv2D_4"),  # 3x3 kernel on 1x1
    ({"conv_layers": [{"filters": 2}] * 3, "pool_size": 4}, (28, 28, 1), "Conv2D_3"),
    ({"conv_layers": [{"filters": 2}, {"filters": 2, "kernel": 2}], "pool_size": 3}, (28, 28, 3), None),
    ({"conv_layers": [{"filters": 2}] * 2, "pool_size": 4}, (5, 5, 1), "Max_Pool_1"),
    ({"conv_layers": [{"filters": 2, "kernel": 7}], "pool_size": 2}, (6, 9, 1), "Conv2D_1"),  # not square
]


@pytest.mark.parametrize(("raw", "image_shape", "breaks_at"), SHAPES)
def test_feature_map_arithmetic_agrees_with_keras_building_the_layers(raw, image_shape, breaks_at):
    """Keras itself, layer by layer (not build_model, whose guard is this arithmetic), gives the same sizes and
    refuses the same layer."""
    import keras

    config = parse_config({"name": "t", **raw})
    predicted = feature_map_sizes(config, image_shape)
    tensor, built, refused = keras.Input(shape=image_shape), [], None
    for i, conv in enumerate(config.conv_layers, start=1):
        layers = [(f"Conv2D_{i}", keras.layers.Conv2D(conv.filters, conv.kernel))]
        if config.pool_size and i < len(config.conv_layers):
            layers.append((f"Max_Pool_{i}", keras.layers.MaxPooling2D(config.pool_size)))
        for name, layer in layers:
            try:
                tensor = layer(tensor)
            except ValueError as exc:
                assert "zero or negative" in str(exc)
                refused = name
                break
            built.append((name, tensor.shape[1], tensor.shape[2]))
        if refused:
            break
    keras.backend.clear_session()
    assert refused == breaks_at
    assert predicted[: len(built)] == built
    if breaks_at is None:
        assert len(built) == len(predicted) and shrink_problem(config, image_shape) is None
    else:
        name, height, width = predicted[len(built)]
        assert name == breaks_at and min(height, width) < 1
        assert shrink_problem(config, image_shape) is not None


def test_shrink_problem_says_where_and_from_which_size():
    config = parse_config({"conv_layers": [ONE_BY_ONE] * 6, "pool_size": 2})
    assert shrink_problem(config, (28, 28, 1)) == (
        "pooling after conv layer 5 leaves no pixels: 1×1 pooled by 2 is 0×0; use fewer conv layers, a smaller pool "
        "or none")
    config = parse_config({"conv_layers": [{"filters": 2}] * 4, "pool_size": 2})
    assert shrink_problem(config, (28, 28, 1)).startswith(
        "conv layer 4 (kernel 3) leaves no pixels of the input: its input is 1×1; ")
    with pytest.raises(ConfigError, match="conv layer 4 .kernel 3. leaves no pixels"):
        build_model(config, (28, 28, 1), 10)


def test_a_drawn_images_id_is_a_probe_image_and_its_input_is_what_the_run_records():
    own = "u:0123456789abcdef0123"
    assert parse_config({**SMALL, "probe_image": own}).probe_image == own
    with pytest.raises(ConfigError, match="probe_image 'u:nothex' is not an image id"):
        parse_config({**SMALL, "probe_image": "u:nothex"})
    with pytest.raises(ConfigError, match="probe_image must be an integer"):
        parse_config({**SMALL, "probe_image": "seven"})
    data = tiny_dataset()
    pixels = np.random.default_rng(5).random(data.x_test.shape[1:]).astype(np.float32)
    recorder = Recorder()
    result = train(parse_config({**SMALL, "epochs": 1, "probe_image": own}), recorder, data,
                   probe_inputs={own: pixels})
    (_, _, _, probe), = [event for event in recorder.events if event[0] == "epoch"]
    assert probe["image"] == own
    expected = keras.Model(result.model.inputs, result.model.get_layer("Conv2D_1").output)(pixels[np.newaxis])
    np.testing.assert_allclose(probe["activations"], np.asarray(expected)[0], rtol=1e-5, atol=1e-6)
