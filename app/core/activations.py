"""The activation engine: what every layer of a model outputs for test images.

One forward pass of a multi-output "probe" model gives every layer's output for an image; each output is cached on
its own per (model version, image, layer), so changing the layer costs a dictionary lookup and changing the image
one forward pass: no ``model.predict`` per click. Batch work (class statistics, predictions on the whole test set)
uses the truncated sub-model from the input to one layer, built once per layer and cached.

Both are built on :func:`app.core.layer_graph.trace_layers`' graph rather than on ``layer.output``: it reaches the
layers of nested models, knows every shape of a model with open input dimensions, and gives the class scores as
the model's first output, whatever layer comes last in ``model.layers``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.core.cache import LRUCache
from app.core.errors import InvalidInput, NotFound
from app.core.grid import standardize_and_clip, tile
from app.core.layer_graph import LayerInfo, LayerVerdict, trace_layers
from app.core.model_cost import ModelCost, model_cost

logger = logging.getLogger(__name__)

# Images per forward pass over the test set. TensorFlow's CPU allocator keeps buffers sized to the largest batch
# it ran: measured on Fashion-MNIST at Conv2D_1 (bench/class_stats.py), the first pass grew RSS by ~330 MB at
# 256 images, ~190 MB at 128 and ~50-100 MB at 64, with no loss of speed at 64.
DEFAULT_BATCH_SIZE = 64
# The most bytes one batch of a pass over the test set may produce, summed over every shown layer's output (an
# upper bound of what TensorFlow holds at once): a 224 px MobileNetV2 image has 87 MB of outputs, so its passes
# take 12 images at a time, not 64 (5.6 GB); the blog's CNN keeps 64.
BATCH_OUTPUT_BYTES = 2**30
# Bytes of forward passes (one per image, all layers) an engine keeps unless configured (ACTIVATION_CACHE_MB):
# 64 MB hold ~400 passes of the blog's CNN or ~13 of a 512-filter model; with 4 opened models and 2 workers that
# is at most 512 MB on a small machine.
DEFAULT_PASSES_BYTES = 64 * 10**6
# Prefetching the neighbours of a viewed image (so "next" and "previous" find their pass cached) is for a person
# stepping through images. When forward passes are asked for faster than this (views of random images under load),
# it would triple the forward work for passes nobody asks for next, so it pauses.
PREFETCH_MAX_MISSES = 20
PREFETCH_WINDOW_S = 1.0
# Which probes run XLA-compiled (:func:`probe_runs_faster_under_xla`). One image through every layer, median ms of
# the traced graph against XLA, 2 cores, TF 2.21 (bench/forward_pass.py --large): mnist-cnn (6.4 MFLOP) 1.02
# against 0.66, XLA compiling in 0.2 s; MobileNetV2 at 224 px (621 MFLOP) 31.6 against 94.9, compiling in 1.7 s.
# CNNs of plain convolutions built to find the limit: 2.4 MFLOP 0.71 against 0.41, 40 MFLOP 1.17 against 0.85,
# 120 MFLOP 1.51 against 1.38, 470 MFLOP 3.11 against 3.03: XLA saves TensorFlow's dispatch of each operation, a
# fixed cost, while its convolutions fall behind oneDNN's as the arithmetic grows. Depthwise convolutions run
# 2.5-4x slower under XLA at any size: 10 of them on 28 px maps 1.8 against 4.8 ms, 40 5.0 against 19; a
# MobileNetV2 at 96 px and width 0.35 (23 MFLOP) 8.0 against 9.5. The first XLA compilation in a process grows it
# by ~50 MB (XLA's compiler; each later model ~8 MB). 200 MFLOP keeps XLA where it gained 9 % or more and leaves
# the traced graph where it gains too little to pay for its compilation, or loses.
XLA_MAX_FLOPS = 200 * 10**6
XLA_SLOW_LAYERS = frozenset({"DepthwiseConv2D", "SeparableConv2D", "DepthwiseConv1D", "SeparableConv1D"})


class LayerNotFound(NotFound):
    """The model has no (visualisable) layer of that name."""


class ImageOutOfRange(NotFound):
    """An image index outside the test set."""


@dataclass(frozen=True, eq=False)
class ProvidedImage:
    """An image from outside the test set (drawn or uploaded), taken wherever a test-image index is: the engine's
    methods accept it in place of ``index``, and cache its forward pass under ``key``.

    Attributes:
        key: a stable id of the pixels (``u:<content hash>``), never an int, so it cannot clash with a test image.
        pixels: the model input [H, W, C] float32, already preprocessed.
    """

    key: str
    pixels: np.ndarray


def visualisable_layers(model, image_shape: tuple[int, ...] | None = None) -> list[LayerInfo]:
    """The model's layers whose output is [H, W, C] or [N], in order, nested models' layers as ``outer/inner``
    (see :func:`app.core.layer_graph.trace_layers`; ``image_shape`` fills open input dimensions)."""
    return list(trace_layers(model, image_shape).layers)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs as probabilities, decided row by row: a row that is already a distribution is kept, any other
    is passed through softmax. A row with NaN or infinity (from a non-finite input) stays as it is, NaN, and never
    changes how the other rows are read."""
    outputs = np.asarray(outputs, dtype=np.float32)
    finite = np.isfinite(outputs).all(axis=-1)
    with np.errstate(invalid="ignore"):
        distribution = (outputs >= 0).all(axis=-1) & (np.abs(outputs.sum(axis=-1) - 1.0) <= 1e-3)
    converted = np.where(finite[..., np.newaxis], outputs, 0.0)
    result = np.where((distribution | ~finite)[..., np.newaxis], outputs, softmax(converted))
    return result.astype(np.float32)


def graph_function(model, batch: int | None = None, jit_compile: bool = False):
    """``model`` traced for inference as a TensorFlow concrete function of images [batch, H, W, C] float32.

    Args:
        model: the Keras model.
        batch: images per call; None leaves the batch axis open, so that one trace serves every batch size.
        jit_compile: compile the graph with XLA, on its first call (XLA compiles per input shape: give ``batch``).
    """
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *model.inputs[0].shape[1:]), tf.float32)
    # autograph=False: a model call has no Python control flow to convert, and autograph parses source with
    # Python's ast, which CPython 3.11.7 does not guard between threads (seen: "AST constructor recursion depth
    # mismatch" in a later ast.parse after traces ran in request and prefetch threads).
    function = tf.function(lambda images: model(images, training=False), input_signature=[spec], autograph=False,
                           jit_compile=jit_compile)
    return function.get_concrete_function()


def compiled(model, one_image: bool = False, name: str | None = None) -> CompiledModel:
    """``model`` as a traced TensorFlow graph function for inference: call it with images [N, H, W, C].

    Calling a Keras model eagerly costs ~30 ms per image here, its traced graph ~1.6 ms: the difference between a
    sluggish and an instant click. The graph is traced on the first call (opening a model stays cheap); later calls
    go to the concrete function directly, skipping ``tf.function``'s per-call signature lookup (measured 1.54 vs
    1.94 ms per image for the blog's CNN).

    Args:
        model: the Keras model.
        one_image: every call passes exactly one image, and the graph is compiled with XLA for that shape on the
            first call (0.66 instead of 1.02 ms for the bundled CNN's probe; :data:`XLA_MAX_FLOPS` tells for which
            models it is slower). If XLA fails on the model (an operation it cannot compile), a warning is logged
            and the plain traced graph serves every call. Without it, the batch axis is left open and every batch
            size shares one trace.
        name: the model's name in that warning (default: ``model.name``).
    """
    return CompiledModel(model, one_image, name)


class CompiledModel:
    """A Keras model traced (and maybe XLA-compiled) on its first call: see :func:`compiled`."""

    def __init__(self, model, one_image: bool = False, name: str | None = None) -> None:
        self.model = model
        self.one_image = one_image
        self.name = name or model.name
        self._function = None
        self._choosing = threading.Lock()
        self._runs_xla: bool | None = None

    @property
    def runs_xla(self) -> bool | None:
        """Whether calls run the XLA-compiled graph; None before the first call."""
        return self._runs_xla

    def __call__(self, images):
        """The model's outputs for ``images`` (a tensor, or a list of them for a model of several outputs)."""
        import tensorflow as tf

        images = tf.convert_to_tensor(images, tf.float32)
        if self._function is None:
            # the first requests arrive together (threads of a worker, the prefetch): trace and compile once, and
            # let the others wait for it rather than compile too
            with self._choosing:
                if self._function is None:
                    return self._first_call(images)
        return self._function(images)

    def _first_call(self, images):
        if self.one_image:
            try:
                function = graph_function(self.model, batch=1, jit_compile=True)
                outputs = function(images)
            except Exception as exc:  # noqa: BLE001 - whatever XLA fails on, the traced graph serves the model
                logger.warning("model %s: its forward pass failed under XLA and runs as a traced graph instead: %s",
                               self.name, str(exc)[:300])
            else:
                self._runs_xla = True
                self._function = function
                return outputs
        self._runs_xla = False
        self._function = graph_function(self.model)
        return self._function(images)


def probe_runs_faster_under_xla(cost: ModelCost) -> bool:
    """Whether one image's pass through every layer of a model of ``cost`` is faster XLA-compiled than as a
    traced graph: for models where TensorFlow's dispatch of each operation outweighs their arithmetic, at most
    :data:`XLA_MAX_FLOPS` per image, without layers XLA runs slowly (:data:`XLA_SLOW_LAYERS`, measured above)."""
    return cost.flops <= XLA_MAX_FLOPS and not any(layer.kind in XLA_SLOW_LAYERS for layer in cost.layers)


def first_map_layer(layers: list[LayerInfo]) -> str:
    """The layer pages open on: the first with maps (the first conv layer), else the first."""
    return next((info.name for info in layers if info.is_map), layers[0].name)


class ActivationEngine:
    """Layer outputs of one model version for its test images, with bounded caches.

    Args:
        model: the Keras model.
        images: its test images [N, H, W, C].
        model_name: the name messages use.
        cache_bytes: the most bytes of layer outputs kept (of every layer for ~400 of the blog's digits, of most
            layers of one image of a 224 px MobileNetV2).
    """

    def __init__(self, model, images: np.ndarray, model_name: str, cache_bytes: int = DEFAULT_PASSES_BYTES) -> None:
        self.model = model
        self.images = images
        self.model_name = model_name
        self._graph = trace_layers(model, images.shape[1:])
        self.layers = list(self._graph.layers)
        self.verdicts: list[LayerVerdict] = list(self._graph.verdicts)  # every layer, shown or not, and why
        self._layer_index = {info.name: i for i, info in enumerate(self.layers)}
        outputs = list(self._graph.tensors)
        # The class scores are usually the last layer's output; otherwise (a model with two outputs) the probe
        # returns them as one more output after the layers'.
        self._scores_position = next(
            (i for i, tensor in enumerate(outputs) if tensor is self._graph.output), len(outputs)
        )
        if self._scores_position == len(outputs):
            outputs.append(self._graph.output)
        # the Keras model of the probe: one image's forward pass gives every shown layer's output and the scores
        self.probe_model = self._graph.model(outputs)
        # what one image through the model costs: the store checks it against its limits, the probe's path follows it
        self.cost = model_cost(model, self._graph)
        self._probe = compiled(self.probe_model, one_image=probe_runs_faster_under_xla(self.cost), name=model_name)
        self._n_outputs = len(outputs)
        # one entry per (image, output): a layer change finds its layer without a new pass while it is kept
        self._outputs: LRUCache[np.ndarray] = LRUCache(max_bytes=cache_bytes)
        # the passes being computed, kept by nobody: a view asking for an image whose pass runs (a prefetch) waits
        # for it rather than computing it again
        self._running: LRUCache[list[np.ndarray]] = LRUCache(max_bytes=1)
        self._submodels: LRUCache[object] = LRUCache(16)
        self._predictions: np.ndarray | None = None
        self._lock = threading.Lock()
        self._misses: deque[float] = deque(maxlen=PREFETCH_MAX_MISSES)
        self._prefetcher: ThreadPoolExecutor | None = None
        self._prefetch_pending = False
        self._prefetch_lock = threading.Lock()  # not _lock: that one is held while predictions() runs
        self._pass_bytes: int | None = None  # one test image's pass through every layer, once one was computed
        # told the size of every batch a pass over the test set computes (a background job's progress)
        self.batch_listener: Callable[[int], None] | None = None

    @property
    def graph(self):
        """The traced :class:`~app.core.layer_graph.LayerGraph` the engine's models are built on (read-only use:
        gradient models for attribution and feature visualisation are built on it too)."""
        return self._graph

    @property
    def probe_runs_xla(self) -> bool | None:
        """Whether a view's forward pass runs XLA-compiled (:func:`probe_runs_faster_under_xla`, and XLA compiled
        the model); None until the first pass (:meth:`warm_up` runs it when a model is opened)."""
        return self._probe.runs_xla

    @property
    def n_images(self) -> int:
        """Size of the frozen test set."""
        return len(self.images)

    def layer(self, name: str) -> LayerInfo:
        """The :class:`LayerInfo` of ``name``; raises :class:`LayerNotFound` listing the valid names."""
        if name not in self._layer_index:
            valid = ", ".join(info.name for info in self.layers)
            raise LayerNotFound(f"model {self.model_name!r} has no layer {name!r}; layers: {valid}")
        return self.layers[self._layer_index[name]]

    def check_image(self, index: int | ProvidedImage) -> int | ProvidedImage:
        """Return ``index`` if it addresses a test image (or is a :class:`ProvidedImage` of the test images' shape),
        else raise :class:`ImageOutOfRange` (or :class:`InvalidInput`)."""
        if isinstance(index, ProvidedImage):
            if index.pixels.shape != self.images.shape[1:]:
                raise InvalidInput(f"image {index.key} is {list(index.pixels.shape)}: model {self.model_name!r} takes "
                                   f"{list(self.images.shape[1:])}")
            return index
        if not 0 <= index < self.n_images:
            raise ImageOutOfRange(f"image index {index} is out of range: the test set has images 0-{self.n_images - 1}")
        return index

    def _output(self, index: int | ProvidedImage, position: int, foreground: bool = True) -> np.ndarray:
        """Output ``position`` of the probe (a layer's, or the class scores) for one image: cached, else from one
        forward pass through every layer (computed once however many threads ask at once)."""
        self.check_image(index)
        key = index.key if isinstance(index, ProvidedImage) else index
        cached = self._outputs.get((key, position))
        if cached is not None:
            return cached

        def run() -> list[np.ndarray]:
            if foreground and not isinstance(index, ProvidedImage):
                self._misses.append(time.monotonic())
            pixels = (index.pixels[np.newaxis].astype(np.float32, copy=False) if isinstance(index, ProvidedImage)
                      else self.images[index : index + 1])
            outputs = self.forward_pass(pixels)
            self._pass_bytes = sum(out.nbytes for out in outputs)
            self._keep(key, outputs, position)
            return outputs

        return self._running.get_or_compute(key, run)[position]

    def forward_pass(self, pixels: np.ndarray) -> list[np.ndarray]:
        """Every output of the probe (the shown layers', then the class scores if no layer gives them) for one
        image [1, H, W, C] float32, uncached: the pass a view of an image not cached runs."""
        return [np.asarray(out)[0] for out in self._probe(pixels)]

    @property
    def first_map_layer(self) -> str:
        """The layer pages open on (:func:`first_map_layer`)."""
        return first_map_layer(self.layers)

    def warm_up(self) -> None:
        """Trace the probe (and compile it, when it runs XLA-compiled) and run the first test image through it,
        keeping the layer pages open on (:attr:`first_map_layer`) and the scores when a pass is larger than the
        cache.

        Done when a model is opened, so that a user's first view neither traces nor compiles the graph nor waits
        for TensorFlow's first-run set-up: for a 224 px MobileNetV2 that is ~1.2 s against a 44 ms view, for the
        bundled CNN's XLA compilation 0.2 s against a 0.7 ms view.
        """
        if self.n_images:
            self._output(0, self._layer_index[self.first_map_layer], foreground=False)
        else:
            self._probe(np.zeros((1, *self.images.shape[1:]), np.float32))

    def _keep(self, key, outputs: list[np.ndarray], asked: int) -> None:
        """Cache each output of one image's pass on its own, the class scores and the ``asked`` one last (the most
        recently used): when a pass is larger than the cache (every layer of a 224 px model), what the view shows
        stays, and the layers kept of the rest are the ones a layer change finds without a new pass."""
        last = (self._scores_position, asked)
        for position in [*(p for p in range(len(outputs)) if p not in last), *dict.fromkeys(last)]:
            self._outputs.put((key, position), outputs[position])

    def is_cached(self, index: int | ProvidedImage) -> bool:
        """Whether the class scores of ``index`` (and so its view without a new pass) are cached."""
        key = index.key if isinstance(index, ProvidedImage) else index
        return (key, self._scores_position) in self._outputs

    def forward_image(self, image: ProvidedImage) -> list[np.ndarray]:
        """Every layer's output (and the class scores) for an image from outside the test set, cached under its
        key in the same byte-bounded cache as the test images' outputs."""
        return [self._output(image, position) for position in range(self._n_outputs)]

    def _busy(self) -> bool:
        """True while forward passes are asked for faster than PREFETCH_MAX_MISSES per PREFETCH_WINDOW_S."""
        misses = self._misses
        return len(misses) == misses.maxlen and time.monotonic() - misses[0] < PREFETCH_WINDOW_S

    def prefetch_neighbours(self, index: int) -> bool:
        """Compute the forward passes of images ``index - 1`` and ``index + 1`` (wrapping around, as the
        explorer's previous/next buttons do) in a background thread, unless they are cached.

        Bounded: one thread per engine and at most one batch queued or running (a request while one is pending is
        dropped), and none while the engine is busy (see :data:`PREFETCH_MAX_MISSES`). A view asked for while its
        pass is being prefetched waits for that pass rather than computing it again.

        Returns:
            True if a prefetch was started.
        """
        wanted = [i for i in dict.fromkeys(((index - 1) % self.n_images, (index + 1) % self.n_images))
                  if i != index and not self.is_cached(i)]
        if not wanted or self._busy() or not self._holds_neighbours():
            return False
        with self._prefetch_lock:
            if self._prefetch_pending:
                return False
            self._prefetch_pending = True
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._prefetcher.submit(self._prefetch, wanted)
        return True

    def _holds_neighbours(self) -> bool:
        """Whether the pass cache holds the viewed pass and both neighbours' at once. A 224 px model's pass through
        every layer (87 MB for MobileNetV2, 149 MB for ResNet50) does not fit even once: prefetching would compute
        two passes to throw them away, on the cores the next view needs."""
        return self._pass_bytes is None or 3 * self._pass_bytes <= self._outputs.max_bytes

    def _prefetch(self, indices: list[int]) -> None:
        try:
            for index in indices:
                self._output(index, self._scores_position, foreground=False)
        except Exception:  # noqa: BLE001 - a failed prefetch only means the view computes its own pass
            pass
        finally:
            with self._prefetch_lock:
                self._prefetch_pending = False

    def activations(self, layer_name: str, index: int) -> np.ndarray:
        """Output of layer ``layer_name`` for test image ``index``: [H, W, C] or [N], float32 (cached)."""
        position = self._layer_index[self.layer(layer_name).name]
        return self._output(index, position)

    def tiled(self, layer_name: str, index: int, scaled: bool = False, per_row: int | None = None):
        """Layer output of one image tiled into a grid (see :func:`app.core.grid.tile`).

        Args:
            scaled: apply the blog's standardise-and-clip scaling per map first.

        Returns:
            ``(grid, layout)``.
        """
        values = self.activations(layer_name, index)
        return tile(standardize_and_clip(values) if scaled else values, per_row)

    def probabilities(self, index: int) -> np.ndarray:
        """Class probabilities of test image ``index`` (the model's first output, softmaxed if needed)."""
        return as_probabilities(self._output(index, self._scores_position))

    def submodel(self, layer_name: str):
        """The truncated model from the input to ``layer_name``'s output, traced for inference (cached)."""
        info = self.layer(layer_name)
        tensor = self._graph.tensors[self._layer_index[info.name]]
        return self._submodels.get_or_compute(info.name, lambda: compiled(self._graph.model(tensor)))

    def iter_layer_batches(
        self, layer_name: str, indices: np.ndarray | None = None, batch_size: int = DEFAULT_BATCH_SIZE
    ):
        """Yield ``(batch_indices, outputs)`` of ``layer_name`` over the test set, one batch at a time.

        Peak memory is one batch of activations, so a 10,000-image test set never needs all of them at once.
        """
        yield from self._batches(self.submodel(layer_name), indices, batch_size)

    @property
    def image_output_bytes(self) -> int:
        """Bytes of every shown layer's output for one image (float32)."""
        return sum(int(np.prod(info.output_shape)) * 4 for info in self.layers)

    def largest_batch(self, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
        """``batch_size``, or fewer images when their outputs would pass :data:`BATCH_OUTPUT_BYTES`; at least 1."""
        return max(1, min(batch_size, BATCH_OUTPUT_BYTES // max(1, self.image_output_bytes)))

    def _batches(self, submodel, indices: np.ndarray | None, batch_size: int):
        indices = np.arange(self.n_images) if indices is None else np.asarray(indices, dtype=np.int64)
        batch_size = self.largest_batch(batch_size)
        for start in range(0, len(indices), batch_size):
            batch = indices[start : start + batch_size]
            outputs = np.asarray(submodel(self.images[batch]))
            if self.batch_listener is not None:
                self.batch_listener(len(batch))
            yield batch, outputs

    def predictions(self) -> np.ndarray:
        """Class probabilities of the whole test set, [N, classes], computed once per model version."""
        with self._lock:
            if self._predictions is None:
                scores = compiled(self._graph.model(self._graph.output))
                batches = [out for _, out in self._batches(scores, None, DEFAULT_BATCH_SIZE)]
                self._predictions = as_probabilities(np.concatenate(batches))
            return self._predictions
