"""A zoo of tiny Keras image classifiers, each opened like a user's model: from a store folder, through the engine,
the JSON API and the explorer's render callback.

Every layer the engine lists is checked against Keras' own truncated model ``keras.Model(model.inputs,
layer.output)`` on a copy of the model loaded separately; a layer of a nested model (``backbone/conv``) against the
same kind of sub-model built on the nested model, fed what the outer model feeds it. Models the explorer cannot show
are refused with a reason, never a crash. This is where other activation viewers break (Quiver on Sequential models
in Keras 3, keract on nested models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from app.core.activations import softmax
from app.core.classes import compute_class_means
from app.core.contributions import contribution_layers, contributions
from app.core.grid import tile
from app.core.model_files import BrokenModel
from app.core.store import ModelStore
from app.figures.charts import rgb_pixels
from app.figures.codec import decode_array, decode_picture
from tests.app_context import refresh_context, served_context
from tests.conftest import write_model_folder
from tests.figure_checks import assert_codes_stand_for

N_IMAGES = 6
N_CLASSES = 3


@dataclass(frozen=True)
class Specimen:
    """One zoo model: how to build it, its test images' shape, what the explorer should list.

    Attributes:
        build: builds the model (seeded before the call).
        image_shape: [H, W, C] of the test images.
        layers: the layer names the engine must list, in order.
        logits: the first output has no softmax (the probabilities are its softmax).
        feeds: for each nested model, the layer of its parent that feeds it (None: the parent's input).
    """

    build: object
    image_shape: tuple[int, int, int]
    layers: tuple[str, ...]
    logits: bool = False
    feeds: dict[str, str | None] = field(default_factory=dict)


def conv(filters, name, activation="relu"):
    return layers.Conv2D(filters, 3, activation=activation, name=name)


def softmax_output(name="output"):
    return layers.Dense(N_CLASSES, activation="softmax", name=name)


def randomise_batch_norm(model):
    """Moving statistics and scales far from the identity, so inference (not training) behaviour is what shows."""
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            randomise_batch_norm(layer)
        elif isinstance(layer, layers.BatchNormalization):
            size = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2, size), rng.normal(0, 1, size), rng.normal(0, 1, size),
                               rng.uniform(0.2, 3, size)])
    return model


def sequential_bn_dropout():
    return randomise_batch_norm(keras.Sequential([
        keras.Input((10, 10, 1)), conv(4, "conv", None), layers.BatchNormalization(name="bn"),
        layers.Activation("relu", name="relu"), layers.MaxPooling2D(2, name="pool"),
        layers.Dropout(0.5, name="drop2d"), layers.Flatten(name="flat"),
        layers.Dense(8, activation="relu", name="hidden"), layers.Dropout(0.5, name="drop"), softmax_output(),
    ]))


def sequential_built_late():
    """No Input layer: built with ``build()``, as older code does (``model.inputs`` exists only once built)."""
    model = keras.Sequential([conv(3, "conv"), layers.MaxPooling2D(2, name="pool"), layers.Flatten(name="flat"),
                              softmax_output()])
    model.build((None, 8, 8, 1))
    return model


def functional_rgb():
    """With the preprocessing layers such models start with: a rescaling, and an augmentation that must be off."""
    inputs = keras.Input((32, 32, 3))
    x = layers.RandomFlip("horizontal", name="flip")(layers.Rescaling(2.0, offset=-1.0, name="rescale")(inputs))
    x = layers.MaxPooling2D(2, name="pool1")(conv(4, "conv1")(x))
    x = layers.GlobalAveragePooling2D(name="gap")(conv(6, "conv2")(x))
    return keras.Model(inputs, softmax_output()(x))


def nested_functional():
    """A backbone model (itself holding a Sequential block) applied straight to the input, as in transfer learning."""
    block = keras.Sequential([conv(4, "conv"), layers.MaxPooling2D(2, name="pool"), layers.Dropout(0.5, name="drop")],
                             name="block")
    inner_inputs = keras.Input((12, 12, 1))
    x = layers.BatchNormalization(name="bn")(conv(3, "conv", None)(inner_inputs))
    backbone = keras.Model(inner_inputs, block(x), name="backbone")
    inputs = keras.Input((12, 12, 1))
    x = layers.Flatten(name="flat")(backbone(inputs))
    return randomise_batch_norm(keras.Model(inputs, softmax_output()(x)))


def nested_sequential():
    block = keras.Sequential([keras.Input((6, 6, 2)), conv(4, "conv"), layers.MaxPooling2D(2, name="pool")],
                             name="block")
    return keras.Sequential([keras.Input((8, 8, 1)), conv(2, "stem"), block, layers.Flatten(name="flat"),
                             softmax_output()])


def non_square():
    inputs = keras.Input((9, 15, 1))
    x = layers.MaxPooling2D(2, name="pool")(conv(3, "conv")(inputs))
    return keras.Model(inputs, softmax_output()(layers.Flatten(name="flat")(x)))


def logits_output():
    inputs = keras.Input((6, 6, 1))
    x = layers.Flatten(name="flat")(conv(2, "conv")(inputs))
    return keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(x))


def open_size_gap():
    """``Input((None, None, 1))``: the height and width come from the test set (10 x 13)."""
    inputs = keras.Input((None, None, 1))
    x = layers.GlobalAveragePooling2D(name="gap")(conv(4, "conv2")(conv(3, "conv1")(inputs)))
    return keras.Model(inputs, softmax_output()(x))


def wide_512():
    inputs = keras.Input((5, 5, 1))
    x = layers.GlobalAveragePooling2D(name="gap")(conv(512, "conv512")(inputs))
    return keras.Model(inputs, softmax_output()(x))


def two_outputs():
    """Class probabilities and a regression head; the head is the last layer, so ``model.layers[-1]`` is not the
    class output."""
    inputs = keras.Input((8, 8, 1))
    x = layers.Flatten(name="flat")(conv(2, "conv")(inputs))
    return keras.Model(inputs, [softmax_output("classes")(x), layers.Dense(1, name="box")(x)])


ZOO = {
    "sequential-bn-dropout": Specimen(sequential_bn_dropout, (10, 10, 1),
                                      ("conv", "bn", "relu", "pool", "drop2d", "flat", "hidden", "drop", "output")),
    "sequential-built-late": Specimen(sequential_built_late, (8, 8, 1), ("conv", "pool", "flat", "output")),
    "functional-rgb": Specimen(functional_rgb, (32, 32, 3),
                               ("rescale", "flip", "conv1", "pool1", "conv2", "gap", "output")),
    "nested-functional": Specimen(
        nested_functional, (12, 12, 1),
        ("backbone/conv", "backbone/bn", "backbone/block/conv", "backbone/block/pool", "backbone/block/drop",
         "backbone/block", "backbone", "flat", "output"),
        feeds={"backbone": None, "block": "bn"},
    ),
    "nested-sequential": Specimen(nested_sequential, (8, 8, 1),
                                  ("stem", "block/conv", "block/pool", "block", "flat", "output"),
                                  feeds={"block": "stem"}),
    "non-square": Specimen(non_square, (9, 15, 1), ("conv", "pool", "flat", "output")),
    "logits": Specimen(logits_output, (6, 6, 1), ("conv", "flat", "logits"), logits=True),
    "open-size-gap": Specimen(open_size_gap, (10, 13, 1), ("conv1", "conv2", "gap", "output")),
    "wide-512": Specimen(wide_512, (5, 5, 1), ("conv512", "gap", "output")),
    "two-outputs": Specimen(two_outputs, (8, 8, 1), ("conv", "flat", "classes", "box")),
}


def two_inputs():
    first, second = keras.Input((6, 6, 1)), keras.Input((6, 6, 1))
    x = layers.Concatenate(name="both")([first, second])
    return keras.Model([first, second], softmax_output()(layers.Flatten()(x)))


def segmentation():
    inputs = keras.Input((6, 6, 1))
    return keras.Model(inputs, layers.Conv2D(N_CLASSES, 1, activation="softmax", name="mask")(inputs))


def binary_sigmoid():
    inputs = keras.Input((6, 6, 1))
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid", name="p")(layers.Flatten()(inputs)))


def never_built():
    return keras.Sequential([layers.Flatten(), softmax_output()])


REFUSED = {
    "two-inputs": (two_inputs, "has 2 inputs"),
    "segmentation": (segmentation, "expected one score per class"),
    "binary-sigmoid": (binary_sigmoid, "a single sigmoid unit is not supported"),
    "never-built": (never_built, "no defined inputs"),
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """The store folder with every zoo model and refused model, each with a seeded test set."""
    root = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(11)
    builders = {name: (spec.build, spec.image_shape) for name, spec in ZOO.items()}
    builders.update({name: (build, (6, 6, 1)) for name, (build, _) in REFUSED.items()})
    for name, (build, shape) in builders.items():
        keras.backend.clear_session()
        keras.utils.set_random_seed(7)
        images = rng.random((N_IMAGES, *shape), dtype=np.float32)
        write_model_folder(root, name, build(), images, np.arange(N_IMAGES) % N_CLASSES)
    return root


@pytest.fixture(scope="module")
def store(zoo) -> ModelStore:
    """The app's own model store, over the zoo: the engine, the API and the pages see the same opened models."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STORE", str(zoo))
        refresh_context()
        yield served_context().store
    refresh_context()


@pytest.fixture(scope="module", params=list(ZOO))
def name(request) -> str:
    """A zoo model; module-scoped so pytest runs every test of one model before the next (the store keeps 4)."""
    return request.param


@pytest.fixture(scope="module")
def references(zoo) -> dict:
    """Each zoo model loaded again, apart from the store: the engine's graph is never what it is checked against."""
    return {name: keras.saving.load_model(zoo / name / "model.keras", compile=False) for name in ZOO}


def reference_output(model, name: str, images: np.ndarray, feeds: dict[str, str | None]) -> np.ndarray:
    """Output of layer ``name`` of ``model`` for ``images``, by Keras alone, at inference (``training=False``: called
    without it, an augmentation layer such as RandomFlip flips at random).

    A top-level layer: ``keras.Model(model.inputs, layer.output)``. A nested model, or ``outer/inner``: what the
    outer model feeds the nested one (its input, or a truncated model to the feeding layer), then the nested model,
    or a truncated model of it, on that.
    """
    head, _, rest = name.partition("/")
    layer = model.get_layer(head)
    if not isinstance(layer, keras.Model):
        return np.asarray(keras.Model(model.inputs, layer.output)(images, training=False))
    feeder = feeds[head]
    fed = images
    if feeder is not None:
        fed = np.asarray(keras.Model(model.inputs, model.get_layer(feeder).output)(images, training=False))
    return np.asarray(layer(fed, training=False)) if not rest else reference_output(layer, rest, fed, feeds)


def test_every_listed_layer_equals_keras_own_submodel(store, references, name):
    spec = ZOO[name]
    loaded = store.get(name)
    engine = loaded.engine
    assert [info.name for info in engine.layers] == list(spec.layers)
    reference = references[name]
    for index in (0, N_IMAGES - 1):
        image = loaded.images[index : index + 1]
        for info in engine.layers:
            want = reference_output(reference, info.name, image, spec.feeds)[0]
            got = engine.activations(info.name, index)
            assert got.shape == want.shape == info.output_shape, info.name
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{name}: {info.name}")
            grid, layout = engine.tiled(info.name, index)
            assert grid.shape == layout.shape and layout.n_units == info.n_units
            np.testing.assert_allclose(grid, tile(want)[0], rtol=1e-5, atol=1e-5)


def test_probabilities_are_the_first_output_softmaxed_only_if_logits(store, references, name):
    spec = ZOO[name]
    loaded = store.get(name)
    scores = np.asarray(keras.tree.flatten(references[name](loaded.images, training=False))[0])
    want = softmax(scores) if spec.logits else scores
    assert len(loaded.class_names) == N_CLASSES
    for index in range(N_IMAGES):
        probabilities = loaded.engine.probabilities(index)
        assert probabilities.shape == (N_CLASSES,) and abs(probabilities.sum() - 1) < 1e-5
        np.testing.assert_allclose(probabilities, want[index], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.engine.predictions(), want, rtol=1e-5, atol=1e-6)


def test_whole_test_set_work_streams_every_layer(store, name):
    """Batches (class means, top images) go through per-layer sub-models of the same graph as single images."""
    loaded = store.get(name)
    engine = loaded.engine
    for info in engine.layers:
        batches = np.concatenate([out for _, out in engine.iter_layer_batches(info.name, batch_size=4)])
        assert batches.shape == (N_IMAGES, *info.output_shape)
        np.testing.assert_allclose(batches[2], engine.activations(info.name, 2), rtol=1e-5, atol=1e-5)
    means = compute_class_means(engine, loaded.labels, engine.layers[0].name, N_CLASSES)
    assert means.means.shape == (N_CLASSES, *engine.layers[0].output_shape)
    for layer in contribution_layers(loaded):  # the MLP view: whatever it offers adds up to the next layer's logits
        result = contributions(loaded, layer, 0, (0, 1))
        np.testing.assert_allclose(result.contributions.sum(axis=1) + result.bias, result.logits, rtol=1e-5)


def test_two_outputs_use_the_first_and_say_so(store):
    loaded = store.get("two-outputs")
    assert loaded.model.layers[-1].name == "box"  # the last layer is not the class output
    assert loaded.notes and "2 outputs" in loaded.notes[0] and "first" in loaded.notes[0]
    entry = next(entry for entry in store.entries() if entry.name == "two-outputs")
    assert entry.ok and entry.notes == loaded.notes
    assert store.get("functional-rgb").notes == ()


@pytest.mark.parametrize(("name", "reason"), [pytest.param(name, reason, id=name)
                                              for name, (_, reason) in REFUSED.items()])
def test_models_the_explorer_cannot_show_are_refused_with_a_reason(store, name, reason):
    with pytest.raises(BrokenModel, match=reason):
        store.get(name)
    entry = next(entry for entry in store.entries() if entry.name == name)
    assert not entry.ok and reason in entry.reason


@pytest.fixture(scope="module")
def client(store):
    """The real app's API over the zoo store."""
    from app.main import server

    return server.test_client()


def test_api_lists_the_zoo_with_refusals_and_notes(client):
    rows = {row["name"]: row for row in client.get("/api/models").get_json()["models"]}
    assert {name for name, row in rows.items() if row["status"] == "ok"} == set(ZOO)
    for name, (_, reason) in REFUSED.items():
        assert rows[name]["status"] == "broken" and reason in rows[name]["reason"]
        response = client.get(f"/api/models/{name}")
        assert response.status_code == 409 and reason in response.get_json()["error"]
    assert "2 outputs" in rows["two-outputs"]["notes"][0] and rows["logits"]["notes"] == []


def test_api_answers_every_layer(client, store, name):
    details = client.get(f"/api/models/{name}")
    assert details.status_code == 200
    body = details.get_json()
    assert [layer["name"] for layer in body["layers"]] == list(ZOO[name].layers)
    assert body["input_shape"] == list(ZOO[name].image_shape)
    engine = store.get(name).engine
    for layer in body["layers"]:
        response = client.get(f"/api/models/{name}/activations", query_string={"layer": layer["name"], "image": 1})
        assert response.status_code == 200, (layer["name"], response.data[:300])
        values = np.asarray(response.get_json()["values"], dtype=np.float32)
        assert list(values.shape) == layer["output_shape"]
        np.testing.assert_allclose(values, engine.activations(layer["name"], 1), rtol=1e-6, atol=1e-6)
    predict = client.get(f"/api/models/{name}/predict?image=2")
    assert predict.status_code == 200 and abs(sum(predict.get_json()["probabilities"]) - 1) < 1e-5


@pytest.fixture(scope="module")
def explore(client):
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import explore

    return explore


def test_explorer_renders_every_layer(explore, store, name):
    loaded = store.get(name)
    for info in loaded.engine.layers:
        heatmap, image, bars, _, query, message = explore.render(name, info.name, 3, "viridis", False, False)
        assert message == [], (info.name, message)
        units = heatmap["data"][0]["meta"].get("units")  # a layer of many maps shows its first page
        values = loaded.engine.activations(info.name, 3)
        assert_codes_stand_for(heatmap["data"][0], tile(values if units is None else values[..., units])[0])
        assert len(bars["data"][0]["y"]) == N_CLASSES and f"model={name}" in query
    trace = image["data"][0]
    if loaded.images.shape[-1] == 3:  # RGB is drawn in colour, as it is
        assert trace["type"] == "image"
        np.testing.assert_array_equal(decode_picture(trace), rgb_pixels(loaded.images[3]))
        assert np.ptp(decode_picture(trace), axis=-1).max() > 0  # the channels differ: colour, not grey
    else:
        assert trace["type"] == "heatmap"
        np.testing.assert_array_equal(decode_array(trace["z"]), loaded.images[3][..., 0])


@pytest.mark.parametrize("name", list(REFUSED))
def test_explorer_shows_the_refusal_reason(explore, name):
    *kept, message = explore.render(name, "anything", 0, "viridis", False, False)
    assert REFUSED[name][1] in str(message.children)
