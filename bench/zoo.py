"""The models people bring, measured against plain Keras in the same run: MobileNetV2 and ResNet50 at 224×224 and a
small CIFAR-sized CNN, opened and explored the way the app does it, each figure beside plain Keras on the same model.

Models (``weights=None``, seeded with ``keras.utils.set_random_seed(0)``; untrained: their outputs are noise, their
costs are real), built once and cached as model-store folders in ``var/bench/zoo/<name>/`` (``model.keras``,
``test_set.npz``, ``meta.json``), rebuilt only when the recipe or the number of images changes:

- ``mobilenetv2-224``: ``keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10)``;
- ``resnet50-224``: ``keras.applications.ResNet50(input_shape=(224, 224, 3), weights=None, classes=10)``;
- ``cifar-cnn``: four 3×3 convolutions (32, 32, 64, 64) with two 2×2 max poolings, Dense 128, Dense 10 softmax,
  at 32×32×3.

Test images: the bundled real MNIST digits (``model_store/mnist-cnn/test_set.npz``, 1,000 digits 28×28×1)
resized bilinearly to the model's input and coloured (strokes tinted with a random colour per image on a darker
random-tinted background, seeded), repeated with random shifts of up to 2 px to reach N; labels are the digits'.
N is 1,000 for the 224-px models (``--images``) and 10,000 for ``cifar-cnn`` (``--cifar-images``). A test set of
more than 64 MB is saved uncompressed as float32 and read from disk as its images are used (memory-mapped, not
held): 10,000 images of 224×224×3 are 6.0 GB on disk per model. Smaller ones are loaded, within the
``TEST_SET_MAX_MB`` this script passes (``--test-set-max-mb``, 1,024; the app's default is 256).

Measured per model, in one process (the app's own objects, built from its settings with the store set to
``var/bench/zoo``; everything else at the app's defaults, e.g. ``ACTIVATION_CACHE_MB`` 64):

- first open: ``ModelStore.get`` (files read and checked, test set opened, layers traced and priced, the probe
  traced and image 0, the image pages open on, run through it);
- first view: the Explore page's render callback at the layer the page opens on (the first map layer), image 0,
  with Dash's JSON of its answer (the layer's dead units are marked once known: never computed for a view);
  first new image: the first image change after the model opened, the first view that needs a forward pass;
- layer first seen: the same for the first conv layer, a middle map layer, the last conv layer (the last map layer
  that is no pooling: ``out_relu``, ``conv5_block3_out``) and ``predictions``, image 0;
- image change: a random image not viewed before (nor a neighbour, which a view prefetches), at one of those
  four layers in turn; layer change: the same image at another of them. Medians over ``--views``. Before each
  view the script waits until the page's background prefetch of the neighbours is done (a person looks at a view
  for longer than that); its duration is reported;
- bytes of the view: the callback's answer as the browser gets it uncompressed (``POST /_dash-update-component``
  through Flask's test client), for every visualisable layer, image 3. Only for this sweep, the dead units of every
  layer come from one streamed pass over the test set (exactly the units :meth:`StatisticsCache.dead_units` finds)
  rather than from one pass per layer, and the prefetch is off: neither changes a byte;
- plain Keras: ``model.predict_on_batch`` of one image (median after a warm-up), and ``model.predict`` of the whole
  test set (``batch_size=64``), first and second call;
- dataset-wide views as the app computes them (a new :class:`StatisticsCache`, nothing cached): the top images of
  unit 0 of the last conv layer, and its class means;
- the worker's own memory (``RssAnon``: without the pages of the memory-mapped test set, which are the kernel's
  page cache) after the views, before plain Keras' ``predict`` (which copies its input) and the dataset-wide
  passes, and its growth; ``VmRSS`` at the end in the details. The models stay opened in the store, as in a worker
  that opened them all.

Usage::

    .venv/bin/python bench/zoo.py [--images N] [--cifar-images N] [--models a,b] [--views 30] [--out PATH]

Writes the table to ``--out`` (default ``bench/results/zoo.md``) and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

ZOO_DIR = ROOT / "var" / "bench" / "zoo"
DIGITS = ROOT / "model_store" / "mnist-cnn" / "test_set.npz"
DEFAULT_OUT = ROOT / "bench" / "results" / "zoo.md"
# Bump when the models or the pictures change: cached folders of another recipe are rebuilt.
RECIPE = 1
SEED = 0
MODELS = {"mobilenetv2-224": 224, "resnet50-224": 224, "cifar-cnn": 32}
DEFAULT_IMAGES = 1_000  # the 224-px models: 602 MB as float32
DEFAULT_CIFAR_IMAGES = 10_000  # 123 MB
DEFAULT_TEST_SET_MAX_MB = 1_024
PICTURES = "bundled digits resized and coloured"
MAX_SHIFT = 2  # px on the 28-px digit, for the copies beyond the first 1,000
CHUNK = 100  # images resized at a time
# A test set larger than this has plain Keras' first (tracing) call and the bytes sweep's dead-unit pass on its first
# this many images: at 10,000 images of 224 px each whole pass takes minutes and measures nothing more.
LARGE_TEST_SET = 1000
BYTES_IMAGE = 3
KEEP_MODELS = 4  # the store's opened models (its default): every model of the zoo stays open
MB = 10**6


def log(message: str) -> None:
    """One progress line on stderr (the table goes to stdout)."""
    print(f"zoo: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The folders


def build_model(name: str):
    """The Keras model ``name`` of the zoo, untrained, seeded with ``keras.utils.set_random_seed(0)``."""
    import keras

    keras.utils.set_random_seed(SEED)
    if name == "mobilenetv2-224":
        return keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10)
    if name == "resnet50-224":
        return keras.applications.ResNet50(input_shape=(224, 224, 3), weights=None, classes=10)
    if name == "cifar-cnn":
        layers = keras.layers
        return keras.Sequential([
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.Conv2D(64, 3, activation="relu", name="conv4"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="dense1"),
            layers.Dense(10, activation="softmax", name="predictions"),
        ], name="cifar_cnn")
    raise ValueError(f"no model {name!r} in the zoo: {', '.join(MODELS)}")


def coloured_digits(digits: np.ndarray, labels: np.ndarray, n: int, size: int,
                    seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` colour pictures of ``size``×``size`` made from greyscale digits [M, 28, 28, 1] in [0, 1].

    Digit ``i % M`` is resized bilinearly; its strokes get a random colour (each channel in [0.55, 1]) on a
    random-tinted background (each channel in [0, 0.4]), mixed by the digit's intensity. Copies beyond the first
    ``M`` are shifted by up to :data:`MAX_SHIFT` px first. Seeded: the same call gives the same pictures.

    Returns:
        images float32 [n, size, size, 3] in [0, 1], labels int64 [n] (the digits' own).
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    order = np.arange(n) % len(digits)
    copies = np.arange(n) // len(digits)
    ink = rng.uniform(0.55, 1.0, (n, 1, 1, 3)).astype(np.float32)
    paper = rng.uniform(0.0, 0.4, (n, 1, 1, 3)).astype(np.float32)
    shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, (n, 2))
    shifts[copies == 0] = 0
    images = np.empty((n, size, size, 3), np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        batch = np.stack([np.roll(digits[order[i]], tuple(shifts[i]), axis=(0, 1)) for i in range(start, stop)])
        grey = np.clip(tf.image.resize(batch.astype(np.float32), (size, size), method="bilinear").numpy(), 0, 1)
        images[start:stop] = paper[start:stop] * (1 - grey) + ink[start:stop] * grey
    return images, labels[order].astype(np.int64)


def description(name: str, n: int, size: int) -> str:
    """meta.json's ``dataset_description``: how the pictures were made."""
    return (f"{PICTURES}: the 1,000 real MNIST digits bundled with the app (model_store/mnist-cnn/test_set.npz) "
            f"resized bilinearly to {size}x{size}, strokes tinted with a random colour per image on a random-tinted "
            f"background (seed {SEED}), repeated with random shifts of up to {MAX_SHIFT} px to reach {n:,} images; "
            f"labels are the digits'. The model ({name}) is untrained (weights=None, seed {SEED}).")


def recipe(name: str, n: int) -> str:
    """meta.json's ``source``: what the cache compares to decide whether a folder is current."""
    return f"bench/zoo.py recipe {RECIPE}: {name}, {n} images, seed {SEED}"


def is_current(folder: Path, name: str, n_images: int) -> bool:
    """Whether ``folder`` holds zoo model ``name`` with ``n_images`` test images of the current recipe."""
    from app.core.model_files import META_FILE, TEST_SET_FILE

    try:
        source = json.loads((folder / META_FILE).read_text()).get("source")
    except (OSError, ValueError, AttributeError):
        return False
    return source == recipe(name, n_images) and (folder / "model.keras").is_file() and (
        folder / TEST_SET_FILE).is_file()


def build_folder(root: Path, name: str, n_images: int, digits_file: Path = DIGITS) -> tuple[Path, bool]:
    """The model-store folder of zoo model ``name`` with ``n_images`` test images under ``root``, built (through
    :meth:`ModelStore.save`: a temporary folder renamed into place) unless a current one is there.

    Returns:
        ``(folder, built)``: ``built`` is False when the cached folder was kept.
    """
    from app.core.store import ModelStore

    folder = root / name
    if is_current(folder, name, n_images):
        return folder, False
    size = MODELS[name]
    with np.load(digits_file, allow_pickle=False) as bundled:
        digits, labels = bundled["images"], bundled["labels"]
    images, labels = coloured_digits(digits, labels, n_images, size)
    meta = {"dataset": "zoo-digits", "dataset_description": description(name, n_images, size),
            "class_names": [str(k) for k in range(10)], "source": recipe(name, n_images), "test_size": n_images,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    ModelStore(root).save(name, build_model(name), images, labels, meta, overwrite=True)
    return folder, True


# ---------------------------------------------------------------------------------------------------------------
# Measuring


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory, MB: ``VmRSS`` (all of it), or ``RssAnon`` (its own memory, without the
    pages of mapped files such as a memory-mapped test set, which the kernel may drop and read again)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / MB
    return float("nan")


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def chosen_layers(engine) -> dict[str, str]:
    """The four layers views are timed at: the first conv layer, the middle map layer, the last conv layer (the last
    map layer that is no pooling) and ``predictions`` (else the last layer)."""
    maps = [info for info in engine.layers if info.is_map]
    names = [info.name for info in engine.layers]
    return {
        "first conv": next((info.name for info in maps if "Conv" in info.class_name), maps[0].name),
        "middle": maps[len(maps) // 2].name,
        "last conv": [info.name for info in maps if "Pool" not in info.class_name][-1],
        "predictions": "predictions" if "predictions" in names else names[-1],
    }


def settle(engine, timeout_s: float = 60.0) -> float:
    """Wait until the engine's background prefetch (started by a view) is done; the seconds waited."""
    started = time.perf_counter()
    while getattr(engine, "_prefetch_pending", False) and time.perf_counter() - started < timeout_s:
        time.sleep(0.005)
    return time.perf_counter() - started


@dataclass
class Result:
    """Everything measured on one model."""

    name: str
    images: int
    image_shape: tuple[int, ...]
    test_set_mb: float
    built_s: float | None
    parameters: int = 0
    pass_mb: float = 0.0
    layers: int = 0
    open_ms: float = 0.0
    first_view_ms: float = 0.0
    first_layer: str = ""
    chosen: dict[str, str] = field(default_factory=dict)
    first_seen_ms: dict[str, float] = field(default_factory=dict)
    image_change_ms: list[float] = field(default_factory=list)
    image_change_json_ms: list[float] = field(default_factory=list)
    layer_change_ms: list[float] = field(default_factory=list)
    prefetch_s: list[float] = field(default_factory=list)
    forward_ms: list[float] = field(default_factory=list)
    predict_on_batch_ms: list[float] = field(default_factory=list)
    predict_cold_s: float = 0.0
    cold_images: int = 0
    predict_s: float = 0.0
    top_images_s: float = 0.0
    class_means_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    own_before_mb: float = 0.0
    own_after_views_mb: float = 0.0
    view_bytes: dict[str, int] = field(default_factory=dict)
    input_picture_bytes: int = 0
    cache_mb: float = 0.0
    dead_pass_s: float = 0.0
    sweep_s: float = 0.0


def view_timer(explore, to_json, name: str, json_ms: list[float] | None = None):
    """A function timing one Explore view as the app serves it: the render callback, then Dash's JSON of its
    answer (bench/view_server.py's measure); the JSON's share is appended to ``json_ms`` when given."""

    def view(layer: str, index: int, json_ms: list[float] | None = json_ms) -> float:
        started = time.perf_counter()
        outputs = explore.render(name, layer, index, "viridis", False, False)
        rendered = time.perf_counter()
        to_json(list(outputs))
        elapsed = ms_since(started)
        if json_ms is not None:
            json_ms.append(ms_since(rendered))
        if not isinstance(outputs[0], dict) or "data" not in outputs[0]:
            raise RuntimeError(f"{name} {layer} image {index}: no heatmap; the page says {outputs[-1]}")
        return elapsed

    return view


def dead_units_of_every_layer(engine, most_images: int) -> dict[str, np.ndarray]:
    """bool [units] per visualisable layer: the units that are 0 at every position of the first ``most_images``
    test images, from one streamed pass of a model with every layer's output (what ``StatisticsCache.dead_units``
    finds layer by layer from the peaks of :func:`app.core.units.compute_top_units` over the whole test set; the
    bytes sweep only needs the marks' shape, not a pass over 10,000 images)."""
    from app.core.activations import compiled

    graph = engine.graph
    probe = compiled(graph.model(list(graph.tensors)))
    peaks = [np.zeros(info.n_units, np.float32) for info in engine.layers]
    per_image = sum(int(np.prod(info.output_shape)) * 4 for info in engine.layers)
    batch_size = max(1, min(64, 256 * MB // max(1, per_image)))
    for start in range(0, min(engine.n_images, most_images), batch_size):
        outputs = probe(engine.images[start:start + batch_size])
        for k, info in enumerate(engine.layers):
            values = np.abs(np.asarray(outputs[k])).reshape(-1, info.n_units).max(axis=0)
            peaks[k] = np.maximum(peaks[k], values)
    return {info.name: peaks[k] == 0 for k, info in enumerate(engine.layers)}


def measure(result: Result, context, server, views: int) -> None:
    """Fill ``result`` for one model, opened through the app's own store ``context.store``."""
    from dash._utils import to_json

    from app.core.statistics import StatisticsCache
    from app.pages import explore
    from app.ui.components import default_layer
    from scripts.smoke_run import EXPLORER_RENDER_INPUTS, callback_request

    name = result.name
    result.rss_before_mb, result.own_before_mb = rss_mb(), rss_mb("RssAnon")
    started = time.perf_counter()
    loaded = context.store.get(name)
    result.open_ms = ms_since(started)
    engine, model = loaded.engine, loaded.model
    result.parameters = int(model.count_params())
    result.pass_mb = (loaded.cost.activation_bytes if loaded.cost else 0) / MB
    result.layers = len(engine.layers)
    result.cache_mb = context.settings.activation_cache_bytes / MB
    view = view_timer(explore, to_json, name)

    log(f"{name}: opened in {result.open_ms / 1000:.1f} s; first view")
    result.first_layer = default_layer(engine)
    result.first_view_ms = view(result.first_layer, 0)
    settle(engine)
    result.chosen = chosen_layers(engine)
    for role, layer in result.chosen.items():
        if layer == result.first_layer:
            continue  # seen by the first view
        log(f"{name}: first sight of {layer} ({role})")
        result.first_seen_ms[role] = view(layer, 0)
        settle(engine)

    log(f"{name}: {views} image changes and layer changes")
    rng = np.random.default_rng(SEED)
    touched = {engine.n_images - 1, 0, 1}
    layers = list(result.chosen.values())
    for i in range(views):
        fresh = [k for k in range(engine.n_images) if k not in touched] or list(range(engine.n_images))
        index = int(rng.choice(fresh))
        touched.update((index - 1, index, index + 1))
        result.image_change_ms.append(view(layers[i % len(layers)], index, result.image_change_json_ms))
        result.prefetch_s.append(settle(engine))
        result.layer_change_ms.append(view(layers[(i + 2) % len(layers)], index))
        settle(engine)
    untouched = [k for k in range(engine.n_images) if k not in touched][:10]
    for index in untouched:  # the engine's forward pass alone (every layer's output), on images no view touched
        started = time.perf_counter()
        engine.probabilities(index)
        result.forward_ms.append(ms_since(started))
        settle(engine)

    result.own_after_views_mb = rss_mb("RssAnon")  # the app's own: before plain Keras' predict adds its copies
    log(f"{name}: plain Keras")
    images = loaded.images
    for i in range(3):
        model.predict_on_batch(images[i:i + 1])
    for index in rng.integers(0, engine.n_images, 30):
        started = time.perf_counter()
        model.predict_on_batch(images[int(index):int(index) + 1])
        result.predict_on_batch_ms.append(ms_since(started))
    result.cold_images = min(engine.n_images, LARGE_TEST_SET)  # a large set's first call: a slice, to trace
    started = time.perf_counter()
    model.predict(images[:result.cold_images], batch_size=64, verbose=0)
    result.predict_cold_s = time.perf_counter() - started
    started = time.perf_counter()
    model.predict(images, batch_size=64, verbose=0)
    result.predict_s = time.perf_counter() - started

    last = result.chosen["last conv"]
    log(f"{name}: top images and class means of {last} over {engine.n_images:,} images")
    started = time.perf_counter()
    StatisticsCache().top_images(loaded, last, 0, k=9)
    result.top_images_s = time.perf_counter() - started
    started = time.perf_counter()
    StatisticsCache().class_means(loaded, last)
    result.class_means_s = time.perf_counter() - started
    result.rss_after_mb = rss_mb()

    log(f"{name}: bytes of the view at each of {result.layers} layers")
    started = time.perf_counter()
    dead = dead_units_of_every_layer(engine, LARGE_TEST_SET)
    result.dead_pass_s = time.perf_counter() - started
    client = server.test_client()
    dependencies = client.get("/_dash-dependencies").get_json()
    statistics_cache = context.statistics
    statistics_cache.dead_units = lambda _loaded, layer: dead[layer]
    engine.prefetch_neighbours = lambda _index: False
    started = time.perf_counter()
    try:
        for info in engine.layers:
            body = callback_request(dependencies, f"{explore.HEATMAP}.figure", {
                **EXPLORER_RENDER_INPUTS, f"{explore.IDS.model}.value": name, f"{explore.LAYER}.value": info.name,
                f"{explore.IMAGE}.value": BYTES_IMAGE,
            })
            answer = client.post("/_dash-update-component", json=body)
            text = answer.get_data()
            if answer.status_code != 200 or b'"data"' not in text:
                raise RuntimeError(f"{name} {info.name}: answer {answer.status_code} {text[:300]!r}")
            result.view_bytes[info.name] = len(text)
    finally:
        del statistics_cache.dead_units, engine.prefetch_neighbours
    result.sweep_s = time.perf_counter() - started
    picture = explore.render(name, result.chosen["predictions"], BYTES_IMAGE, "viridis", False, False)[1]
    result.input_picture_bytes = len(to_json(picture))


# ---------------------------------------------------------------------------------------------------------------
# Reporting


def ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def kb(value: float) -> str:
    return f"{value / 1000:,.0f} kB" if value >= 10_000 else f"{value / 1000:.1f} kB"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else float("nan")


def table(results: list[Result]) -> str:
    """The markdown table: one row per model."""
    head = ["model", "test set", "parameters", "first open", "first view", "image change (median)",
            "predict_on_batch (median)", "ratio", "layer change (median)", "view bytes max / median (layer of max)",
            "top images, last conv", "model.predict, test set", "ratio", "class means, last conv",
            "own memory after the views (+ growth)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        sizes = list(r.view_bytes.values())
        biggest = max(r.view_bytes, key=r.view_bytes.get) if sizes else "-"
        image, batch = median(r.image_change_ms), median(r.predict_on_batch_ms)
        cells = [
            f"`{r.name}`",
            f"{r.images:,} × {'×'.join(map(str, r.image_shape))}, {PICTURES} ({r.test_set_mb:,.0f} MB)",
            f"{r.parameters:,}",
            seconds(r.open_ms / 1000),
            seconds(r.first_view_ms / 1000),
            ms(image),
            ms(batch),
            f"{image / batch:.1f}×",
            ms(median(r.layer_change_ms)),
            f"{kb(max(sizes))} / {kb(statistics.median(sizes))} (`{biggest}`)" if sizes else "-",
            seconds(r.top_images_s),
            seconds(r.predict_s),
            f"{r.top_images_s / r.predict_s:.1f}×",
            seconds(r.class_means_s),
            f"{r.own_after_views_mb:,.0f} MB (+{r.own_after_views_mb - r.own_before_mb:,.0f})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(r: Result) -> str:
    """The figures behind one row, and the ones the table has no room for."""
    roles = ", ".join(f"{role} `{layer}` " + (seconds(r.first_seen_ms[role] / 1000) if role in r.first_seen_ms
                                               else "(the first view's)") for role, layer in r.chosen.items())
    at = {layer: r.view_bytes.get(layer, 0) for layer in r.chosen.values()}
    built = ("built in this run" + (f" ({r.built_s:.0f} s for all that were)" if r.built_s else "")
             if r.built_s is not None else "cached folder reused")
    return "\n".join([
        f"- **`{r.name}`** ({r.layers} visualisable layers; one image's pass through every layer "
        f"{r.pass_mb:,.1f} MB; {built}):",
        f"  - first view at `{r.first_layer}` (the page's first layer) {seconds(r.first_view_ms / 1000)}; each layer's "
        f"first sight: {roles}; first new image (the first forward pass after opening) "
        f"{ms(r.image_change_ms[0]) if r.image_change_ms else '-'}",
        f"  - image change median {ms(median(r.image_change_ms))} (p90 {ms(p90(r.image_change_ms))}), of which "
        f"Dash's JSON {ms(median(r.image_change_json_ms))} and the engine's forward pass (every layer's output, "
        f"timed alone on other images) {ms(median(r.forward_ms))}; layer change median "
        f"{ms(median(r.layer_change_ms))} (p90 {ms(p90(r.layer_change_ms))}), {len(r.image_change_ms)} each; "
        + (f"one pass ({r.pass_mb:,.0f} MB) is larger than the engine's cache (ACTIVATION_CACHE_MB "
           f"{r.cache_mb:,.0f}): the shown layer and the scores stay with as many other layers as fit, and no "
           "neighbour is prefetched; " if r.pass_mb > r.cache_mb else "")
        + f"the background prefetch of the two neighbours outlasted an image change's answer by "
        f"{seconds(median(r.prefetch_s))} (median)",
        f"  - plain Keras: predict_on_batch median {ms(median(r.predict_on_batch_ms))}, p90 "
        f"{ms(p90(r.predict_on_batch_ms))}; model.predict {seconds(r.predict_cold_s)} first call (over "
        f"{r.cold_images:,} images), {seconds(r.predict_s)} second (over the {r.images:,})",
        "  - view bytes at the four layers: " + ", ".join(f"`{layer}` {kb(size)}" for layer, size in at.items())
        + f"; the input picture alone, in every answer: {kb(r.input_picture_bytes)}; sweep of all "
        f"{len(r.view_bytes)} layers {seconds(r.sweep_s)} (after a dead-unit pass over "
        f"{min(r.images, LARGE_TEST_SET):,} images of {seconds(r.dead_pass_s)})",
        f"  - memory: own (RssAnon) {r.own_before_mb:,.0f} MB before opening, {r.own_after_views_mb:,.0f} MB after the "
        f"views (the table's figure); all of it (VmRSS, with the mapped test set's pages and plain Keras' predict) "
        f"{r.rss_before_mb:,.0f} MB before opening, {r.rss_after_mb:,.0f} MB at the end",
    ])


def report(results: list[Result], settings: dict) -> str:
    """The whole markdown file: when and how, the table, the details."""
    load = os.getloadavg()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=False).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The model zoo against plain Keras",
        "",
        f"`bench/zoo.py` on {now}, commit {commit}; {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {settings['load_start']:.1f} at the start, {load[0]:.1f} at the end. "
        f"Command: `{settings['command']}`.",
        "",
        f"Test images: {PICTURES} (the 1,000 bundled MNIST digits, resized bilinearly, coloured per image, repeated "
        f"with shifts). `TEST_SET_MAX_MB={settings['test_set_max_mb']}` passed to the store (the app's default is "
        f"256) for test sets held in memory; one of more than 64 MB is saved uncompressed as float32 and read from "
        f"disk as used (602 kB an image at 224×224×3: 10,000 such images are 6.0 GB on disk); "
        f"{settings['why_images']}",
        "",
        table(results),
        "",
        "Ratios: image change / predict_on_batch (one image, plain Keras); top images / model.predict over the same "
        "test set (second call). First open is `ModelStore.get`; a view is the Explore render callback plus Dash's "
        "JSON of its answer, in-process; bytes are the callback's answer uncompressed, over every visualisable layer "
        "(image 3). Own memory is the process's RssAnon after the views (the mapped test set's pages are the "
        "kernel's page cache, not counted; the models opened before it stay open, as in a worker). The first model "
        "opened also pays TensorFlow's import and start-up (first open, memory growth): the app imports it when it "
        "opens a model. The machine is shared: compare the ratios, measured in the same process a moment apart.",
        "",
        *[details(r) for r in results],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="test images of the 224-px models")
    parser.add_argument("--cifar-images", type=int, default=DEFAULT_CIFAR_IMAGES, help="test images of cifar-cnn")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--views", type=int, default=30, help="image changes (and as many layer changes) per model")
    parser.add_argument("--test-set-max-mb", type=int, default=DEFAULT_TEST_SET_MAX_MB,
                        help="TEST_SET_MAX_MB for the store")
    parser.add_argument("--zoo", type=Path, default=ZOO_DIR, help="the store folder the models are cached in")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--build-only", action="store_true",
                        help="only build the folders that are missing or stale (what a run does in a child process)")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        parser.error(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    counts = {n: args.cifar_images if MODELS[n] == 32 else args.images for n in names}
    for n, count in counts.items():
        test_set_mb = count * MODELS[n] ** 2 * 3 * 4 / MB
        if count < 1 or test_set_mb > args.test_set_max_mb:
            parser.error(f"{n}: {count:,} images of {MODELS[n]}x{MODELS[n]}x3 take {test_set_mb:,.0f} MB as float32; "
                         f"the store takes at most --test-set-max-mb {args.test_set_max_mb} (and at least 1 image)")
    load_start = os.getloadavg()[0]

    args.zoo.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        for n in names:
            started = time.perf_counter()
            _, built = build_folder(args.zoo, n, counts[n])
            log(f"{n}: {f'built in {time.perf_counter() - started:.0f} s' if built else 'cached folder is current'}")
        return
    stale = [n for n in names if not is_current(args.zoo / n, n, counts[n])]
    built_s = None
    if stale:  # in a child process: this one's memory is then the app's alone
        log(f"building {', '.join(stale)} in {args.zoo}")
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build-only", "--models", ",".join(stale), "--images",
                        str(args.images), "--cifar-images", str(args.cifar_images), "--zoo", str(args.zoo),
                        "--test-set-max-mb", str(args.test_set_max_mb)], check=True)
        built_s = time.perf_counter() - started
    results = [Result(n, counts[n], (MODELS[n], MODELS[n], 3), counts[n] * MODELS[n] ** 2 * 3 * 4 / MB,
                      built_s if n in stale else None) for n in names]

    state = Path(tempfile.mkdtemp(prefix="bench-zoo-state-"))
    os.environ.update({"MODEL_STORE": str(args.zoo.resolve()), "TEST_SET_MAX_MB": str(args.test_set_max_mb),
                       "STATE_DIR": str(state)})
    try:
        from app.config import Settings
        from app.context import AppContext, install
        from app.main import server

        context = AppContext(Settings.from_env())
        install(server, context)
        with server.app_context():
            for result in results:
                measure(result, context, server, args.views)
    finally:
        shutil.rmtree(state, ignore_errors=True)

    big = [n for n in names if MODELS[n] == 224]
    why = (f"the 224-px models used {args.images:,} images each ({args.images * 224 * 224 * 3 * 4 / MB:,.0f} MB)"
           + (" as asked (`--images`)" if args.images != DEFAULT_IMAGES else ", the default") if big else "")
    why += ("; " if big and "cifar-cnn" in names else "") + (
        f"`cifar-cnn` used {args.cifar_images:,}" if "cifar-cnn" in names else "") + "."
    command = "bench/zoo.py " + " ".join(sys.argv[1:])
    text = report(results, {"load_start": load_start, "test_set_max_mb": args.test_set_max_mb, "why_images": why,
                            "command": command.strip()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
