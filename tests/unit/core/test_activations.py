"""The activation engine on tiny models, checked against independent numpy forward passes."""

import keras
import numpy as np
import pytest

from app.core.activations import ImageOutOfRange, LayerNotFound, ProvidedImage, as_probabilities, visualisable_layers
from app.core.store import ModelStore
from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder


def numpy_conv_relu(image: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid 2-D convolution (cross-correlation, as Keras) + relu: image [H, W, C], kernel [k, k, C, F]."""
    k = kernel.shape[0]
    height, width = image.shape[0] - k + 1, image.shape[1] - k + 1
    out = np.zeros((height, width, kernel.shape[3]))
    for y in range(height):
        for x in range(width):
            patch = image[y : y + k, x : x + k, :]
            out[y, x] = np.tensordot(patch, kernel, axes=([0, 1, 2], [0, 1, 2])) + bias
    return np.maximum(out, 0)


def numpy_forward(model, image):
    """Every layer of the tiny CNN in numpy: conv+relu, 2x2 max pool, flatten, dense relu, dense softmax."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    conv = numpy_conv_relu(image, *layers[0].get_weights())
    pool = conv[:4, :4].reshape(2, 2, 2, 2, -1).max(axis=(1, 3))
    flat = pool.reshape(-1)
    kernel, bias = layers[3].get_weights()
    hidden = np.maximum(flat @ kernel + bias, 0)
    kernel, bias = layers[4].get_weights()
    logits = hidden @ kernel + bias
    return conv, pool, flat, hidden, np.exp(logits) / np.exp(logits).sum()


@pytest.fixture(params=["sequential", "functional-default-names"])
def loaded(request, tmp_path):
    keras.backend.clear_session()
    model = build_tiny_model(default_names=request.param != "sequential", functional=request.param != "sequential")
    images, labels = tiny_test_set()
    write_model_folder(tmp_path, "m", model, images, labels)
    return ModelStore(tmp_path).get("m")


def test_every_layer_equals_independent_numpy(loaded):
    engine = loaded.engine
    names = [info.name for info in engine.layers]
    assert len(names) == 5
    for index in (0, 7):
        expected = numpy_forward(loaded.model, loaded.images[index])
        for name, want in zip(names, expected, strict=True):
            np.testing.assert_allclose(engine.activations(name, index), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(engine.probabilities(index), expected[-1], rtol=1e-5, atol=1e-6)


def test_values_equal_truncated_submodel(loaded):
    engine = loaded.engine
    for info in engine.layers:
        submodel = keras.Model(loaded.model.inputs, loaded.model.get_layer(info.name).output)
        want = np.asarray(submodel(loaded.images[3:4]))[0]
        np.testing.assert_allclose(engine.activations(info.name, 3), want, rtol=1e-6, atol=1e-6)


def test_default_dense_names_are_listed(tmp_path):
    keras.backend.clear_session()
    model = build_tiny_model(default_names=True)
    names = [info.name for info in visualisable_layers(model)]
    assert names[:3] == ["conv", "pool", "flat"]
    assert all(name.startswith("dense") for name in names[3:])


def test_forward_pass_is_cached_per_image(loaded):
    engine = loaded.engine
    passes = []
    probe = engine._probe
    engine._probe = lambda images: passes.append(len(images)) or probe(images)  # count forward passes
    first = engine.activations(engine.layers[0].name, 2)
    assert engine.activations(engine.layers[0].name, 2) is first and passes == [1]
    engine.activations(engine.layers[1].name, 2)
    assert passes == [1]  # same pass, other layer: no second forward pass
    engine.activations(engine.layers[1].name, 3)
    assert passes == [1, 1]


def test_batches_equal_single_images(loaded):
    engine = loaded.engine
    name = engine.layers[3].name
    together = np.concatenate([out for _, out in engine.iter_layer_batches(name, np.array([1, 5, 9]))])
    for row, index in zip(together, [1, 5, 9], strict=True):
        np.testing.assert_allclose(row, engine.activations(name, index), rtol=1e-5, atol=1e-6)
    chunks = np.concatenate([out for _, out in engine.iter_layer_batches(name, batch_size=5)])
    assert chunks.shape == (engine.n_images, 4)
    np.testing.assert_allclose(engine.predictions().argmax(1), [engine.probabilities(i).argmax() for i in range(24)])


def test_bad_layer_and_image_are_clear(loaded):
    engine = loaded.engine
    with pytest.raises(LayerNotFound, match="no layer 'nope'; layers: "):
        engine.activations("nope", 0)
    with pytest.raises(ImageOutOfRange, match="0-23"):
        engine.activations(engine.layers[0].name, 24)
    with pytest.raises(ImageOutOfRange):
        engine.check_image(-1)


def test_tiled_grid_and_scaling(loaded):
    engine = loaded.engine
    grid, layout = engine.tiled("conv", 0)
    assert grid.shape == (4, 8) and layout.n_units == 2
    np.testing.assert_array_equal(grid[:, 4:], engine.activations("conv", 0)[:, :, 1])
    scaled, _ = engine.tiled("conv", 0, scaled=True)
    assert np.nanmin(scaled) >= 0 and np.nanmax(scaled) <= 255


def test_logits_become_probabilities():
    probabilities = as_probabilities(np.array([[2.0, -1.0, 0.5]]))
    np.testing.assert_allclose(probabilities.sum(), 1, rtol=1e-6)
    already = np.array([[0.2, 0.8]], np.float32)
    np.testing.assert_array_equal(as_probabilities(already), already)


def test_probabilities_are_decided_per_image():
    """One image with NaN pixels must not change how the other rows are read, nor turn into a fake certainty."""
    rows = np.array([[0.2, 0.8], [np.nan, np.nan], [3.0, -1.0]], np.float32)
    probabilities = as_probabilities(rows)
    np.testing.assert_array_equal(probabilities[0], rows[0])  # a distribution stays as it is
    assert np.isnan(probabilities[1]).all()  # non-finite stays non-finite, reported as such
    np.testing.assert_allclose(probabilities[2], np.exp([3, -1]) / np.exp([3, -1]).sum(), rtol=1e-6)


def test_passes_are_bounded_in_bytes(tiny_loaded):
    from app.core.activations import ActivationEngine
    from app.core.cache import sizeof

    outputs = tiny_loaded.engine.forward_image(ProvidedImage("u:one-pass", tiny_loaded.images[0]))
    one_pass = sum(sizeof(output) for output in outputs)
    engine = ActivationEngine(tiny_loaded.model, tiny_loaded.images, "tiny", cache_bytes=3 * one_pass + 100)
    for index in range(10):
        engine.activations("conv", index)
    assert 0 < engine._outputs.nbytes <= 3 * one_pass + 100
    assert [engine.is_cached(index) for index in range(10)] == [False] * 7 + [True] * 3


def test_a_pass_larger_than_the_cache_keeps_the_shown_layer_and_the_scores_and_a_layer_change_finds_the_rest(
        tiny_loaded):
    from app.core.activations import ActivationEngine
    from app.core.cache import sizeof

    outputs = tiny_loaded.engine.forward_image(ProvidedImage("u:one-pass", tiny_loaded.images[0]))
    engine = ActivationEngine(tiny_loaded.model, tiny_loaded.images, "tiny",
                              cache_bytes=sum(sizeof(output) for output in outputs) - 1)
    passes = []
    probe = engine._probe
    engine._probe = lambda images: passes.append(len(images)) or probe(images)
    first, last = engine.layers[0].name, engine.layers[-1].name
    shown = engine.activations(first, 2)
    np.testing.assert_array_equal(engine.activations(first, 2), shown)
    engine.probabilities(2)
    assert passes == [1]  # the shown layer and the scores stayed although the whole pass did not fit
    np.testing.assert_array_equal(engine.activations(last, 2), tiny_loaded.engine.activations(last, 2))
    assert len(passes) <= 2


def _wait_for_prefetch(engine, timeout: float = 30.0) -> None:
    """Block until the engine's background prefetch (if any) has finished."""
    if engine._prefetcher is not None:
        engine._prefetcher.submit(lambda: None).result(timeout)


def test_neighbours_are_prefetched_in_the_background_and_then_hit_the_cache(loaded):
    engine = loaded.engine
    last = engine.n_images - 1
    engine.activations(engine.layers[0].name, 0)
    assert engine.prefetch_neighbours(0)
    _wait_for_prefetch(engine)
    passes = []
    probe = engine._probe
    engine._probe = lambda images: passes.append(len(images)) or probe(images)
    # previous of image 0 wraps to the last image, as the explorer's buttons do
    for index in (1, last):
        direct = np.asarray(engine.submodel(engine.layers[0].name)(loaded.images[index:index + 1]))[0]
        np.testing.assert_array_equal(engine.activations(engine.layers[0].name, index), direct)
    assert passes == []  # both came from the cache
    assert not engine.prefetch_neighbours(0)  # nothing left to fetch


def test_no_prefetch_while_passes_are_asked_for_faster_than_a_person_steps(loaded, monkeypatch):
    import app.core.activations as activations

    engine = loaded.engine
    monkeypatch.setattr(activations, "PREFETCH_WINDOW_S", 3600.0)
    for _ in range(engine._misses.maxlen):
        engine._misses.append(activations.time.monotonic())
    assert engine._busy() and not engine.prefetch_neighbours(5)
    engine._misses.clear()
    engine._prefetch_pending = True  # a batch queued or running: another request is dropped
    assert not engine.prefetch_neighbours(5)
    engine._prefetch_pending = False
    assert engine.prefetch_neighbours(5)
    _wait_for_prefetch(engine)
    assert engine.is_cached(4) and engine.is_cached(6) and not engine.is_cached(8)


def test_no_prefetch_when_the_cache_cannot_hold_a_pass_and_both_its_neighbours(loaded):
    from app.core.activations import ActivationEngine

    probe = ActivationEngine(loaded.model, loaded.images, "probe-size")
    one_pass = sum(output.nbytes for output in probe.forward_image(ProvidedImage("u:one-pass", loaded.images[0])))
    # room for two passes, not three: the neighbours would evict each other or the viewed pass
    engine = ActivationEngine(loaded.model, loaded.images, "small-cache", cache_bytes=3 * one_pass - 1)
    engine.activations(engine.layers[0].name, 3)
    assert not engine.prefetch_neighbours(3)
    roomy = ActivationEngine(loaded.model, loaded.images, "roomy-cache", cache_bytes=3 * one_pass)
    roomy.activations(roomy.layers[0].name, 3)
    assert roomy.prefetch_neighbours(3)
    _wait_for_prefetch(roomy)


def test_passes_over_the_test_set_take_fewer_images_when_their_outputs_would_pass_the_batch_bound(loaded, monkeypatch):
    engine = loaded.engine
    assert engine.image_output_bytes == sum(int(np.prod(info.output_shape)) * 4 for info in engine.layers)
    assert engine.largest_batch() == 64  # the blog-sized model keeps the default
    whole = np.concatenate([out for _, out in engine.iter_layer_batches("conv")])
    monkeypatch.setattr("app.core.activations.BATCH_OUTPUT_BYTES", 5 * engine.image_output_bytes + 1)
    sizes = [len(batch) for batch, _ in engine.iter_layer_batches("conv")]
    assert sizes[:-1] == [5] * (len(sizes) - 1) and sum(sizes) == engine.n_images
    np.testing.assert_array_equal(np.concatenate([out for _, out in engine.iter_layer_batches("conv")]), whole)
    monkeypatch.setattr("app.core.activations.BATCH_OUTPUT_BYTES", 1)
    assert engine.largest_batch() == 1
