"""Reaching every layer of in-memory models: nested, shared, subclassed, open input sizes (saved models: the zoo)."""

import keras
import numpy as np
from keras import layers

from app.core.layer_graph import trace_layers


def run(graph, images: np.ndarray) -> dict[str, np.ndarray]:
    outputs = graph.model(list(graph.tensors))(images, training=False)
    return {info.name: np.asarray(out) for info, out in zip(graph.layers, outputs, strict=True)}


def test_open_input_size_takes_the_image_shape():
    keras.backend.clear_session()
    inputs = keras.Input((None, None, 1))
    x = layers.GlobalMaxPooling2D(name="gmp")(layers.Conv2D(2, 3, name="conv")(inputs))
    model = keras.Model(inputs, layers.Dense(3, name="out")(x))
    assert [info.name for info in trace_layers(model).layers] == ["gmp", "out"]  # conv: height and width unknown
    graph = trace_layers(model, (7, 5, 1))
    assert [(info.name, info.output_shape) for info in graph.layers] == [("conv", (5, 3, 2)), ("gmp", (2,)),
                                                                         ("out", (3,))]
    images = np.random.default_rng(0).random((2, 7, 5, 1), dtype=np.float32)
    np.testing.assert_allclose(run(graph, images)["out"], model(images), rtol=1e-6)


def test_layers_named_alike_in_nested_models_are_kept_apart():
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    inner_inputs = keras.Input((4, 4, 2))
    inner = keras.Model(inner_inputs, layers.Conv2D(3, 1, name="conv")(inner_inputs), name="inner")
    inputs = keras.Input((4, 4, 1))
    x = inner(layers.Conv2D(2, 1, name="conv")(inputs))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax", name="out")(layers.Flatten(name="flat")(x)))
    graph = trace_layers(model)
    assert [info.name for info in graph.layers] == ["conv", "inner/conv", "inner", "flat", "out"]
    assert graph.layers[2].class_name == "Functional" and graph.output is graph.tensors[-1]
    images = np.random.default_rng(1).random((3, 4, 4, 1), dtype=np.float32)
    values = run(graph, images)
    outer_conv = np.asarray(keras.Model(inputs, model.get_layer("conv").output)(images))
    np.testing.assert_allclose(values["conv"], outer_conv, rtol=1e-6)
    np.testing.assert_allclose(values["inner/conv"], inner(outer_conv), rtol=1e-6)
    np.testing.assert_allclose(values["inner"], values["inner/conv"])


def test_a_shared_layer_is_shown_at_its_first_call():
    keras.backend.clear_session()
    inputs = keras.Input((3,))
    shared = layers.Dense(3, name="shared")
    first = shared(inputs)
    model = keras.Model(inputs, layers.Softmax(name="out")(shared(layers.ReLU(name="relu")(first))))
    graph = trace_layers(model)
    assert [info.name for info in graph.layers] == ["shared", "relu", "out"]
    images = np.array([[1.0, -2.0, 0.5]], np.float32)
    np.testing.assert_allclose(run(graph, images)["shared"], keras.Model(inputs, first)(images), rtol=1e-6)


def test_a_nested_model_without_a_graph_is_one_layer():
    keras.backend.clear_session()

    class Doubler(keras.Model):
        def __init__(self):
            super().__init__(name="doubler")
            self.scale = layers.Rescaling(2.0, name="scale")

        def call(self, x):
            return self.scale(x)

    inputs = keras.Input((2,))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax", name="out")(Doubler()(inputs)))
    graph = trace_layers(model)
    assert [info.name for info in graph.layers] == ["doubler", "out"]
    np.testing.assert_allclose(run(graph, np.ones((1, 2), np.float32))["doubler"], [[2.0, 2.0]])
