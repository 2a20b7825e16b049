"""Receptive fields from the layer graph match the input pixels a unit's value actually depends on, found here by
differentiating a linear model (no ReLU to zero a gradient) with TensorFlow; crops sit where their fields lie."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.layer_graph import trace_layers
from app.core.receptive_field import field_crops, receptive_field
from app.core.store import ModelStore
from tests.conftest import BUNDLED_MODEL


def _linear_model():
    """Valid, strided, 'same' and dilated convolutions and poolings, every weight non-zero, no activation."""
    import keras

    keras.utils.set_random_seed(5)
    inputs = keras.Input((23, 21, 1))
    x = keras.layers.Conv2D(2, 3, name="c1")(inputs)
    x = keras.layers.AveragePooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(2, (3, 2), strides=2, padding="same", name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(2, 2, dilation_rate=2, padding="same", name="c3")(x)
    outputs = keras.layers.Dense(3, name="d")(keras.layers.Flatten(name="f")(x))
    return keras.Model(inputs, outputs)


def _support(model, layer: str, row: int, col: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the input pixels whose gradient of the layer's unit 0 at (row, col) is not 0."""
    import keras
    import tensorflow as tf

    submodel = keras.Model(model.inputs, model.get_layer(layer).output)
    image = tf.constant(np.random.default_rng(0).random((1, 23, 21, 1), dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(image)
        value = submodel(image)[0, row, col, 0]
    rows, cols = np.nonzero(np.abs(tape.gradient(value, image).numpy()[0, ..., 0]) > 0)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


@pytest.mark.parametrize("layer", ["c1", "p1", "c2", "bn", "c3"])
def test_fields_are_the_pixels_a_unit_depends_on(layer):
    model = _linear_model()
    graph = trace_layers(model)
    field = receptive_field(graph, layer)
    height, width = model.get_layer(layer).output.shape[1:3]
    # in the middle the field is exactly what the unit depends on; at a border part of it may lie over padding,
    # or over a row a pooling dropped, which the unit then does not see
    middle = field.boxes(np.array([height // 2]), np.array([width // 2]), (23, 21))[0]
    assert tuple(int(v) for v in middle) == _support(model, layer, height // 2, width // 2), (layer, field)
    for row, col in ((0, 0), (height - 1, width - 1), (1, width - 2)):
        top, bottom, left, right = field.boxes(np.array([row]), np.array([col]), (23, 21))[0]
        found = _support(model, layer, row, col)
        assert top <= found[0] and found[1] <= bottom and left <= found[2] and found[3] <= right, (layer, row, col)


def test_mnist_cnn_fields_grow_through_its_convolutions_and_poolings():
    loaded = ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn")
    sizes = {name: receptive_field(loaded.engine.graph, name) for name in
             ("Conv2D_1", "Max_Pool_1", "Conv2D_2", "Max_Pool_2", "Conv2D_3", "Dense_1")}
    assert [sizes[name].size[0] for name in list(sizes)[:5]] == [3, 4, 8, 10, 18]
    assert [sizes[name].jump[0] for name in list(sizes)[:5]] == [1, 2, 2, 4, 4]
    assert sizes["Dense_1"].whole and not sizes["Conv2D_3"].whole
    whole = sizes["Dense_1"].boxes(np.array([0, 0]), np.array([0, 0]), (28, 28))
    assert whole.tolist() == [[0, 28, 0, 28]] * 2


def test_a_crop_keeps_its_place_in_a_field_cut_off_by_the_border():
    images = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6, 1)
    # 4x4 fields: one starting a row above the image, one a column left of it and running a row past its bottom
    boxes = np.array([[0, 3, 2, 6], [3, 6, 0, 3]])
    origins = np.array([[-1, 2], [3, -1]])
    crops = field_crops(images, boxes, origins, (4, 4), np.nan)
    assert np.isnan(crops[0, 0]).all() and np.isnan(crops[1, :, 0]).all() and np.isnan(crops[1, 3]).all()
    np.testing.assert_array_equal(crops[0, 1:, :, 0], images[0, 0:3, 2:6, 0])
    np.testing.assert_array_equal(crops[1, :3, 1:, 0], images[1, 3:6, 0:3, 0])
    field = receptive_field(trace_layers(_linear_model()), "c2")
    assert field.origins(np.array([0]), np.array([0])).tolist() == [[0, 0]]
    assert field.origins(np.array([4]), np.array([4])).tolist() == [[16, 16]]
