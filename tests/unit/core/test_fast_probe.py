"""A view's forward pass (the probe: one image through every layer) runs XLA-compiled on small models, and gives
what Keras gives: every layer's output and the scores within float32 rounding, NaN where Keras has NaN, compiled once
when the model is opened however many threads ask first, and served by the traced graph when XLA fails."""

from __future__ import annotations

import logging
import threading
import time

import keras
import numpy as np
import pytest

import app.core.activations as activations
from app.core.activations import ActivationEngine, probe_runs_faster_under_xla
from app.core.model_cost import ModelCost, model_cost
from app.core.store import ModelStore
from tests.conftest import BUNDLED_MODEL, build_tiny_model, layer_outputs, tiny_test_set, write_model_folder

IMAGES = [0, 5, 11, 17]


def assert_equals_keras(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Equal within float32 rounding, relative to the largest value of the output."""
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


def open_model(root, model, images=None, name: str = "m"):
    """``model`` written to a store folder under ``root`` with ``images`` (default: the tiny test set), opened."""
    tiny_images, labels = tiny_test_set()
    images = tiny_images if images is None else images
    write_model_folder(root, name, model, images, labels[: len(images)])
    return ModelStore(root).get(name)


@pytest.fixture(params=["tiny-sequential", "tiny-functional-default-names", "mnist-cnn"])
def opened(request, tmp_path):
    keras.backend.clear_session()
    if request.param == "mnist-cnn":
        return ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn")
    functional = request.param != "tiny-sequential"
    return open_model(tmp_path, build_tiny_model(default_names=functional, functional=functional))


def test_every_layer_and_the_scores_equal_keras_for_several_images(opened):
    engine = opened.engine
    assert engine.probe_runs_xla  # compiled when the model was opened
    for info in engine.layers:
        expected = layer_outputs(opened, info.name, IMAGES)
        for row, index in enumerate(IMAGES):
            assert_equals_keras(engine.activations(info.name, index), expected[row], f"{info.name}, image {index}")
    scores = np.asarray(opened.model(opened.images[IMAGES], training=False))
    for row, index in enumerate(IMAGES):
        assert_equals_keras(engine.probabilities(index), scores[row], f"scores, image {index}")


def test_a_nan_image_gives_nan_where_keras_does(tmp_path):
    keras.backend.clear_session()
    images, _ = tiny_test_set()
    images[3] = np.nan
    images[4, 2, 2, 0] = np.nan  # one pixel: only the outputs it reaches
    loaded = open_model(tmp_path, build_tiny_model(activation="linear"), images)
    engine = loaded.engine
    assert engine.probe_runs_xla
    for info in engine.layers:
        expected = layer_outputs(loaded, info.name, [3, 4])
        for row, index in enumerate((3, 4)):
            got = engine.activations(info.name, index)
            assert np.isnan(got[np.isnan(expected[row])]).all(), (info.name, index)
            assert not np.isfinite(got[~np.isfinite(expected[row])]).any(), (info.name, index)
            # Max pooling over NaN gives -inf under XLA and the lowest float32 under TensorFlow's kernel; the layers
            # after it carry NaN under XLA where TensorFlow has infinities or values near the float32 limit.
            finite = np.isfinite(got) & np.isfinite(expected[row])
            assert_equals_keras(got[finite], expected[row][finite], f"{info.name}, image {index}")
    assert np.isnan(engine.activations("conv", 3)).all()
    for index in (3, 4):
        assert not np.isfinite(engine.probabilities(index)).all(), index
    assert np.isfinite(engine.probabilities(0)).all()


@pytest.fixture
def counted_builds(monkeypatch):
    """Every graph function built, as ``(batch, jit_compile)``; each call of one is timed in ``calls`` as
    ``(start, end)``, and the first call of the first one lasts 0.2 s more, so that another thread calling
    meanwhile would overlap it."""
    build = activations.graph_function
    builds: list[tuple[int | None, bool]] = []
    calls: list[tuple[float, float]] = []

    def counting(model, batch=None, jit_compile=False):
        builds.append((batch, jit_compile))
        function = build(model, batch, jit_compile)

        def timed(images):
            start = time.monotonic()
            if not calls:
                time.sleep(0.2)
            outputs = function(images)
            calls.append((start, time.monotonic()))
            return outputs

        return timed

    monkeypatch.setattr(activations, "graph_function", counting)
    return builds, calls


def test_four_threads_asking_first_compile_once_and_all_get_keras_values(tmp_path, counted_builds):
    builds, calls = counted_builds
    keras.backend.clear_session()
    model = build_tiny_model()
    images, _ = tiny_test_set()
    engine = ActivationEngine(model, images, "tiny")  # not warmed up: the first views compile
    start = threading.Barrier(4)
    answers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def view(index: int) -> None:
        start.wait()
        answers[index] = (engine.activations("conv", index), engine.probabilities(index))

    threads = [threading.Thread(target=view, args=(index,)) for index in IMAGES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert builds == [(1, True)] and engine.probe_runs_xla
    first_end = min(end for _, end in calls)
    assert len(calls) == 4 and sorted(start for start, _ in calls)[1] >= first_end  # the others waited for it
    conv = keras.Model(model.inputs, model.get_layer("conv").output).predict(images[IMAGES], verbose=0)
    scores = np.asarray(model(images[IMAGES], training=False))
    for row, index in enumerate(IMAGES):
        assert_equals_keras(answers[index][0], conv[row], f"conv, image {index}")
        assert_equals_keras(answers[index][1], scores[row], f"scores, image {index}")


def test_opening_a_model_compiles_its_probe_and_views_then_neither_trace_nor_compile(tmp_path, counted_builds):
    builds, _ = counted_builds
    keras.backend.clear_session()
    engine = open_model(tmp_path, build_tiny_model()).engine
    assert builds == [(1, True)]
    for index in IMAGES:
        engine.activations("hidden", index)
    assert builds == [(1, True)]
    engine.predictions()  # a pass over the test set: its own graph, every batch size
    assert builds == [(1, True), (None, False)]


@pytest.mark.parametrize("failing", ["tracing", "compiling"])
def test_when_xla_fails_the_traced_graph_answers_and_the_failure_is_logged_once(tmp_path, monkeypatch, caplog,
                                                                              failing):
    build = activations.graph_function

    def without_xla(model, batch=None, jit_compile=False):
        if not jit_compile:
            return build(model, batch, jit_compile)
        if failing == "tracing":
            raise NotImplementedError("no XLA kernel for this operation")
        function = build(model, batch, jit_compile)

        def fails(images):
            function(images)
            raise RuntimeError("XLA compilation failed: unsupported op")

        return fails

    monkeypatch.setattr(activations, "graph_function", without_xla)
    keras.backend.clear_session()
    with caplog.at_level(logging.WARNING, logger=activations.__name__):
        loaded = open_model(tmp_path, build_tiny_model())
        engine = loaded.engine
        scores = np.asarray(loaded.model(loaded.images[IMAGES], training=False))
        for row, index in enumerate(IMAGES):
            assert_equals_keras(engine.probabilities(index), scores[row], f"scores, image {index}")
    assert engine.probe_runs_xla is False
    warnings = [record.getMessage() for record in caplog.records if record.name == activations.__name__]
    assert len(warnings) == 1 and warnings[0].startswith("model m: ") and "traced graph" in warnings[0]


def test_large_models_and_depthwise_convolutions_keep_the_traced_graph(tmp_path):
    keras.backend.clear_session()
    tiny = build_tiny_model()
    images, _ = tiny_test_set()
    tiny_cost = model_cost(tiny, ActivationEngine(tiny, images, "tiny").graph)
    assert probe_runs_faster_under_xla(tiny_cost)
    mobilenet_sized = ModelCost(tiny_cost.input_shape, tiny_cost.layers, 2_270_794, 87_300_000, 620_700_000)
    assert not probe_runs_faster_under_xla(mobilenet_sized)

    depthwise = keras.Sequential([
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(4, 3, padding="same", name="conv"),
        keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise"),
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dense(3, activation="softmax", name="output"),
    ])
    loaded = open_model(tmp_path, depthwise)
    assert loaded.engine.probe_runs_xla is False
    expected = layer_outputs(loaded, "depthwise", IMAGES)
    for row, index in enumerate(IMAGES):
        assert_equals_keras(loaded.engine.activations("depthwise", index), expected[row], f"image {index}")
