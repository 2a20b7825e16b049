"""A small real network, MobileNetV2 (alpha 0.35, 96 x 96 x 3, 10 classes, ``weights=None``: nothing downloaded,
seeded weights of its own), served from a store of its own: every number the API and Explore show equals what Keras
computes on its own, a whole-test-set result a background job computes equals the one a request computes, a job
killed halfway leaves no result behind, and a second web worker reads the first one's stored result without a job.

The tiny hand-built CNNs of the other tests have one input, no branches and a few maps; this one has depthwise
convolutions, residual adds, batch normalisation and 1,280 maps in one layer.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.context import AppContext, install, of_server
from app.core.statistics import WHOLE_MODEL, StatisticsCache
from app.jobs import background
from tests.conftest import write_model_folder
from tests.statistics_jobs_support import JOB_SECONDS, answer_when_done, kill_halfway, stop_jobs_of

MODEL = "mobilenet"
# The same network with a test set long enough (8 batches, a second or two) for a pass to be killed in the middle.
LONG_MODEL = "mobilenet-long"
IMAGES, LONG_IMAGES = 48, 512
SIZE = 96
# One layer of each kind the network has, the last two the output and a layer of many (1,280) small maps.
SHOWN_LAYERS = ("Conv1", "expanded_conv_depthwise", "block_2_add", "out_relu", "predictions")


@dataclass
class SmallNet:
    """The network as built here (never read back from the store: the reference is independent of how the app
    loads it), its test sets and the store folder holding both models."""

    store: Path
    model: object
    images: np.ndarray
    labels: np.ndarray
    long_images: np.ndarray
    long_labels: np.ndarray
    _outputs: dict[str, np.ndarray] = field(default_factory=dict)

    def outputs(self, layer: str, images: np.ndarray | None = None) -> np.ndarray:
        """``layer``'s output for ``images`` (default: the test set, kept) from a Keras model truncated there."""
        import keras

        if images is None and layer in self._outputs:
            return self._outputs[layer]
        submodel = keras.Model(self.model.inputs, self.model.get_layer(layer).output)
        values = np.asarray(submodel(self.images if images is None else images, training=False))
        if images is None:
            self._outputs[layer] = values
        return values


def lively_weights(model, rng: np.random.Generator) -> None:
    """Give ``model`` seeded weights whose signal survives its 50-odd layers, in place.

    Keras' own initial weights (Glorot kernels, batch normalisation at mean 0, variance 1) halve the signal at every
    ReLU: out_relu comes out near 1e-10 and every probability exactly 0.1, where any ranking is a tie and any
    engine would match. He-scaled kernels, and batch normalisation with statistics of its own, keep every layer's
    values of order 1; the output layer's smaller kernel leaves the classes' probabilities apart but none near 1.
    """
    import keras

    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in weights)
            weights = [rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.2, beta), rng.normal(0, 0.2, mean),
                       rng.uniform(0.5, 1.5, variance)]
        elif isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.Dense):
            kernel, *bias = weights
            fan_in = np.prod(kernel.shape[:2]) if isinstance(layer, keras.layers.DepthwiseConv2D) \
                else np.prod(kernel.shape[:-1])
            spread = np.sqrt(2 / fan_in) * (0.1 if layer.name == "predictions" else 1.0)
            weights = [rng.normal(0, spread, kernel.shape), *(rng.normal(0, 0.1, b.shape) for b in bias)]
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])


def varied_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random images, each with a contrast and a colour offset of its own (same-looking noise images would
    average to the same values in the deep layers)."""
    noise = rng.random((n, SIZE, SIZE, 3), dtype=np.float32)
    return (noise * rng.uniform(0.2, 2, (n, 1, 1, 1)) + rng.uniform(-1, 1, (n, 1, 1, 3))).astype(np.float32)


@pytest.fixture(scope="module")
def small_net(tmp_path_factory) -> SmallNet:
    """The MobileNetV2 with seeded weights in a store, with 48 images (labels 0-9 in turn) and, as a second model,
    the same file with 512."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, classes=10)
    rng = np.random.default_rng(0)
    lively_weights(model, rng)
    images, long_images = varied_images(rng, IMAGES), varied_images(rng, LONG_IMAGES)
    labels, long_labels = np.arange(IMAGES) % 10, np.arange(LONG_IMAGES) % 10
    store = tmp_path_factory.mktemp("small-mobilenet-store")
    folder = write_model_folder(store, MODEL, model, images, labels)
    shutil.copytree(folder, store / LONG_MODEL)
    np.savez(store / LONG_MODEL / "test_set.npz", images=long_images, labels=long_labels)
    return SmallNet(store, model, images, labels, long_images, long_labels)


def settings_of(store: Path, state: Path, **env: str) -> Settings:
    """The settings of an instance serving ``store`` with its shared state in ``state`` (jobs in SQLite there, not
    Redis), plus ``env``, read as the app reads its environment."""
    base = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return Settings.from_env({**base, "MODEL_STORE": str(store), "STATE_DIR": str(state), **env})


@contextmanager
def web_worker(settings: Settings) -> Iterator[tuple[object, AppContext]]:
    """A test client of the app served with a context of its own built from ``settings``, and that context: what
    one web worker process holds (its model store, statistics cache and jobs), so two of them share only
    ``STATE_DIR``."""
    from app.main import server

    previous, context = of_server(server), AppContext(settings)
    install(server, context)
    try:
        yield server.test_client(), context
    finally:
        install(server, previous)


@pytest.fixture(scope="module")
def client(small_net, tmp_path_factory):
    """A web worker serving the small network, with the default in-request budget (its statistics computed in
    the request)."""
    with web_worker(settings_of(small_net.store, tmp_path_factory.mktemp("state"))) as (worker, _):
        yield worker


# How close a number shown must be to Keras', in units of the largest value of its layer. One image's view is Keras'
# to float32 rounding (measured: identical). A pass over the test set runs the graph truncated at the layer, which
# TensorFlow's graph optimiser folds differently (batch normalisation into the convolutions): measured up to 5e-5 of
# the layer's largest value at out_relu, 50 layers in, and identical with grappler's optimisations off.
VIEW_TOLERANCE = 1e-5
PASS_TOLERANCE = 1e-4


def assert_close(shown, keras_values, tolerance: float = VIEW_TOLERANCE, scale: float | None = None) -> None:
    """Equal within ``tolerance`` relative, and absolute in units of ``scale`` (default: the largest of
    ``keras_values``; a difference of class means takes its layer's)."""
    keras_values = np.asarray(keras_values, dtype=np.float32)
    scale = float(np.abs(keras_values).max()) if scale is None else scale
    np.testing.assert_allclose(np.asarray(shown, dtype=np.float32), keras_values, rtol=tolerance,
                               atol=tolerance * max(scale, 1e-6))


def units_of_grid(grid: np.ndarray, output_shape: list[int]) -> np.ndarray:
    """The layer output ([H, W, C] or [N]) a tiled grid shows, read back unit by unit: units of H x W cells, left to
    right and top down, as many to a row as fit the grid's width; the cells past the last unit must be empty."""
    height, width = output_shape[:2] if len(output_shape) == 3 else (1, 1)
    n_units = output_shape[-1]
    assert grid.shape[0] % height == 0 and grid.shape[1] % width == 0, (grid.shape, output_shape)
    rows, cols = grid.shape[0] // height, grid.shape[1] // width
    assert (rows - 1) * cols < n_units <= rows * cols, (grid.shape, output_shape)
    units = np.empty((height, width, n_units), dtype=np.float32)
    for unit in range(rows * cols):
        row, col = divmod(unit, cols)
        cells = grid[row * height:(row + 1) * height, col * width:(col + 1) * width]
        if unit < n_units:
            units[..., unit] = cells
        else:
            assert np.isnan(cells).all(), f"cell of unit {unit} past the last ({n_units - 1}) is not empty"
    return units if len(output_shape) == 3 else units[0, 0]


def shown_grid(client, layer: str, image: int, model: str = MODEL, page: int = 1) -> tuple[np.ndarray, dict]:
    """The exact values of Explore's grid (what its hover label reads), shaped as ``X-Grid-Shape`` says, and the
    answer's headers (a paged layer's ``X-Grid-Page`` and ``X-Grid-Units``)."""
    answer = client.get(f"/api/models/{model}/grid?layer={layer}&image={image}&page={page}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    rows, cols = (int(n) for n in answer.headers["X-Grid-Shape"].split(","))
    return np.frombuffer(answer.get_data(), dtype="<f4").reshape(rows, cols), answer.headers


def shown_layer(client, layer: str, image: int, output_shape: list[int]) -> np.ndarray:
    """The layer output Explore shows, read back from its grid, page by page for a layer of many maps."""
    grid, headers = shown_grid(client, layer, image)
    if "X-Grid-Page" not in headers:
        return units_of_grid(grid, output_shape)
    pages = int(headers["X-Grid-Page"].split("/")[1])
    values = np.full(output_shape, np.nan, np.float32)
    for page in range(1, pages + 1):
        grid, headers = shown_grid(client, layer, image, page=page)
        units = [int(unit) for unit in headers["X-Grid-Units"].split(",")]
        values[..., units] = units_of_grid(grid, [*output_shape[:-1], len(units)])
    return values


def top_by_keras(outputs: np.ndarray, unit: int, by: str) -> np.ndarray:
    """Every test image's score for ``unit`` as the Unit panel defines it: the mean or the max over its map (a
    node's value itself), from Keras' outputs [N, H, W, C] or [N, C]."""
    values = outputs[..., unit].reshape(len(outputs), -1)
    return values.mean(axis=1) if by == "mean" else values.max(axis=1)


def busiest_unit(outputs: np.ndarray) -> int:
    """The unit whose per-image means spread most: its ranking is not decided by ties of zeros."""
    means = outputs.reshape(len(outputs), -1, outputs.shape[-1]).mean(axis=1)
    return int(means.std(axis=0).argmax())


@pytest.mark.parametrize("layer", SHOWN_LAYERS)
def test_each_kind_of_layer_shows_the_values_keras_computes(client, small_net, layer):
    summary = client.get(f"/api/models/{MODEL}").get_json()
    listed = {row["name"]: row for row in summary["layers"]}
    keras_values = small_net.outputs(layer)
    assert listed[layer]["output_shape"] == list(keras_values.shape[1:])
    assert listed[layer]["type"] == type(small_net.model.get_layer(layer)).__name__
    assert summary["test_set_size"] == IMAGES and summary["input_shape"] == [SIZE, SIZE, 3]

    for image in (0, 37):
        assert_close(shown_layer(client, layer, image, listed[layer]["output_shape"]), keras_values[image])
        nested = client.get(f"/api/models/{MODEL}/activations?layer={layer}&image={image}").get_json()
        assert nested["shape"] == list(keras_values.shape[1:])
        assert_close(nested["values"], keras_values[image])


def test_the_probabilities_and_prediction_of_an_image_are_keras_own(client, small_net):
    probabilities = np.asarray(small_net.model(small_net.images, training=False))
    for image in (0, 11, 47):
        answer = client.get(f"/api/models/{MODEL}/predict?image={image}").get_json()
        assert_close(answer["probabilities"], probabilities[image])
        assert answer["predicted"] == int(probabilities[image].argmax())
        assert answer["label"] == int(small_net.labels[image]) and answer["finite"] is True


@pytest.mark.parametrize(("layer", "by"), [("Conv1", "max"), ("block_2_add", "mean"), ("out_relu", "mean"),
                                           ("predictions", "mean")])
def test_the_top_images_of_a_unit_are_the_ones_its_keras_scores_rank_first(client, small_net, layer, by):
    outputs = small_net.outputs(layer)
    unit = busiest_unit(outputs)
    answer = client.get(f"/api/models/{MODEL}/top-images?layer={layer}&unit={unit}&k=9&by={by}").get_json()
    shown = answer["images"]
    scores = top_by_keras(outputs, unit, by)
    indices = np.array([entry["image"] for entry in shown])
    # each shown score is that image's, and they are the 9 best (a near-tie may swap two images' order)
    scale = float(np.abs(outputs).max())
    assert_close([entry["value"] for entry in shown], scores[indices], PASS_TOLERANCE, scale)
    assert_close([entry["value"] for entry in shown], np.sort(scores)[::-1][:9], PASS_TOLERANCE, scale)
    predictions = np.asarray(small_net.model(small_net.images, training=False)).argmax(axis=1)
    assert [entry["label"] for entry in shown] == small_net.labels[indices].tolist()
    assert [entry["predicted"] for entry in shown] == predictions[indices].tolist()
    assert answer["dead"] == bool(np.abs(outputs[..., unit]).max() == 0)


@pytest.mark.parametrize("layer", ["block_2_add", "out_relu"])
def test_a_class_mean_and_a_class_difference_are_the_means_of_keras_outputs(client, small_net, layer):
    outputs = small_net.outputs(layer)
    mean_of = {label: outputs[small_net.labels == label].mean(axis=0) for label in (3, 8)}
    answer = client.get(f"/api/models/{MODEL}/class-mean?layer={layer}&label=3").get_json()
    assert answer["count"] == int((small_net.labels == 3).sum())
    scale = float(np.abs(outputs).max())
    assert_close(answer["values"], mean_of[3], PASS_TOLERANCE, scale)
    difference = client.get(f"/api/models/{MODEL}/class-difference?layer={layer}&a=3&b=8&top=3").get_json()
    assert_close(difference["difference"], mean_of[3] - mean_of[8], PASS_TOLERANCE, scale)


def test_explores_render_shows_the_probabilities_and_grid_keras_computes(client, small_net):
    """Explore's own callback, posted as dash-renderer posts it: its probability bars and the exact values its grid
    names are Keras' numbers for the image."""
    from tests.unit.test_runtime_requirements import smoke_run

    inputs = {**smoke_run.EXPLORER_RENDER_INPUTS, "explore-model.value": MODEL, "explore-layer.value": "Conv1",
              "explore-image.value": 21}
    body = smoke_run.callback_request(client.get("/_dash-dependencies").get_json(), "explore-heatmap.figure", inputs)
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    response = answer.get_json()["response"]
    bars = response["explore-probabilities"]["figure"]["data"][0]
    probabilities = np.asarray(small_net.model(small_net.images[21:22], training=False))[0]
    assert_close(bars["y"], probabilities)
    heatmap = response["explore-heatmap"]["figure"]
    assert "16 maps of image 21" in str(heatmap["layout"]["title"])
    exact = client.get(heatmap["data"][0]["meta"]["values"])
    rows, cols = (int(n) for n in exact.headers["X-Grid-Shape"].split(","))
    grid = np.frombuffer(exact.get_data(), dtype="<f4").reshape(rows, cols)
    assert_close(units_of_grid(grid, [48, 48, 16]), small_net.outputs("Conv1")[21])


@pytest.fixture
def job_state(tmp_path) -> Iterator[Path]:
    """A state folder of the test's own; a job it leaves running (the test failed first) is stopped after it."""
    state = tmp_path / "state"
    yield state
    stop_jobs_of(state)


def test_a_job_computes_the_top_images_a_request_computes_and_a_second_worker_reads_them(small_net, job_state):
    """No pass over the test set in a request (``IN_REQUEST_GFLOPS=0``): two real background processes compute
    the unit's ranking and the predictions; the result equals an in-process pass and Keras' own ranking; another
    worker on the same ``STATE_DIR`` answers at once from the stored files."""
    settings = settings_of(small_net.store, job_state, IN_REQUEST_GFLOPS="0")
    assert settings.in_request_flops == 0
    outputs = small_net.outputs("out_relu")
    unit = busiest_unit(outputs)
    url = f"/api/models/{MODEL}/top-images?layer=out_relu&unit={unit}&k=9"
    with web_worker(settings) as (first, context):
        started = first.get(url)
        assert started.status_code == 202, started.get_json()
        assert started.get_json()["status"] in ("running", "queued")
        assert f"over {IMAGES} test images in the background" in started.get_json()["message"]
        answer = answer_when_done(first, url, 2 * JOB_SECONDS)  # the ranking's job, then the predictions'
        assert answer.status_code == 200, answer.get_json()
        loaded = context.store.get(MODEL)
        jobs = context.statistics_jobs

    # the jobs' stored results equal a pass made here, array for array
    in_process = StatisticsCache(in_request_flops=math.inf)
    from_job, here = jobs.stored(loaded, "out_relu", "top-mean"), in_process.top_units(loaded, "out_relu")
    for name in ("indices", "values", "peaks", "positions"):
        np.testing.assert_array_equal(getattr(from_job, name), getattr(here, name), err_msg=name)
    np.testing.assert_array_equal(jobs.stored(loaded, WHOLE_MODEL, "predictions"), in_process.predictions(loaded))
    # and what the API shows is Keras' ranking
    scores = top_by_keras(outputs, unit, "mean")
    shown, scale = answer.get_json()["images"], float(np.abs(outputs).max())
    assert_close([entry["value"] for entry in shown], np.sort(scores)[::-1][:9], PASS_TOLERANCE, scale)
    assert_close([entry["value"] for entry in shown], scores[[entry["image"] for entry in shown]], PASS_TOLERANCE,
                 scale)

    results = [jobs.path(MODEL, loaded.version, "out_relu", "top-mean"),
               jobs.path(MODEL, loaded.version, WHOLE_MODEL, "predictions")]
    for result in results:
        jobs.job_files(result)[0].unlink(missing_ok=True)  # so a progress file written now would show
    with web_worker(settings) as (second, _):
        again = second.get(url)
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == answer.get_json()
    for result in results:
        progress, lock, _ = jobs.job_files(result)
        assert not progress.exists() and not lock.exists(), "the second worker started a job"


def test_a_job_killed_halfway_leaves_no_result_says_so_and_a_new_request_computes_it(small_net, job_state,
                                                                                      monkeypatch):
    """A class-mean job over 512 images, killed (SIGKILL) after its first batch: no result file, the API says it
    failed; once the failure's minute has passed, a new request starts a job whose result is Keras' class mean."""
    settings = settings_of(small_net.store, job_state, IN_REQUEST_GFLOPS="0")
    url = f"/api/models/{LONG_MODEL}/class-mean?layer=out_relu&label=3"
    with web_worker(settings) as (worker, context):
        assert worker.get(url).status_code == 202
        version = context.store.get(LONG_MODEL).version
        result = context.statistics_jobs.path(LONG_MODEL, version, "out_relu", "means")
        progress, lock, _ = context.statistics_jobs.job_files(result)

        left = kill_halfway(progress, lock)
        assert 0 < left["done"] < left["total"] == LONG_IMAGES, left  # killed in the middle of its pass
        assert not result.exists()
        # nor a file a reader might take for it: its temporary file is written only once the pass is done
        assert not [path.name for path in result.parent.iterdir() if path.suffix == ".npz"]

        failed = worker.get(url)
        assert failed.status_code == 503 and "failed" in failed.get_json()["error"], failed.get_json()
        assert "exited" in failed.get_json()["error"]

        monkeypatch.setattr(background, "RETRY_AFTER_SECONDS", 0)  # the minute a failure is shown has passed
        assert worker.get(url).status_code == 202
        answer = answer_when_done(worker, url)
    assert answer.status_code == 200, answer.get_json()
    class_images = small_net.long_images[small_net.long_labels == 3]
    assert answer.get_json()["count"] == len(class_images)
    class_outputs = small_net.outputs("out_relu", class_images)
    assert_close(answer.get_json()["values"], class_outputs.mean(axis=0), PASS_TOLERANCE,
                 float(np.abs(class_outputs).max()))
    assert result.exists()
