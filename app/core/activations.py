"""The activation engine: what every layer of a model outputs for test images.

One forward pass of a multi-output "probe" model gives every layer's output for an image; it is cached per
(model version, image), so changing the layer costs a dictionary lookup and changing the image one small forward
pass: no ``model.predict`` per click. Batch work (class statistics, predictions on the whole test set) uses the
truncated sub-model ``keras.Model(model.inputs, model.get_layer(name).output)``, built once per layer and cached.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from app.core.cache import LRUCache
from app.core.errors import NotFound
from app.core.grid import standardize_and_clip, tile

# Images per forward pass over the test set. TensorFlow's CPU allocator keeps buffers sized to the largest batch
# it ran: measured on Fashion-MNIST at Conv2D_1 (bench/class_stats.py), the first pass grew RSS by ~330 MB at
# 256 images, ~190 MB at 128 and ~50-100 MB at 64, with no loss of speed at 64.
DEFAULT_BATCH_SIZE = 64
# Bytes of forward passes (one per image, all layers) an engine keeps unless configured (ACTIVATION_CACHE_MB):
# 64 MB hold ~400 passes of the blog's CNN or ~13 of a 512-filter model; with 4 opened models and 2 workers that
# is at most 512 MB on a small machine.
DEFAULT_PASSES_BYTES = 64 * 10**6


class LayerNotFound(NotFound):
    """The model has no (visualisable) layer of that name."""


class ImageOutOfRange(NotFound):
    """An image index outside the test set."""


@dataclass(frozen=True)
class LayerInfo:
    """A layer that can be shown as a grid.

    Attributes:
        name: the Keras layer name (e.g. ``Conv2D_3``, ``dense_1``).
        class_name: the Keras class (``Conv2D``, ``MaxPooling2D``, ``Dense``, ...).
        output_shape: output shape without the batch axis: [H, W, C] or [N].
    """

    name: str
    class_name: str
    output_shape: tuple[int, ...]

    @property
    def is_map(self) -> bool:
        """True for layers with 2-D maps (conv, pooling), False for vectors of nodes."""
        return len(self.output_shape) == 3

    @property
    def n_units(self) -> int:
        """Number of maps or nodes."""
        return self.output_shape[-1]

    @property
    def label(self) -> str:
        """Display text, e.g. ``Conv2D_3 · 3×3×128`` or ``dense_1 · 100``."""
        return f"{self.name} · {'×'.join(str(d) for d in self.output_shape)}"


def visualisable_layers(model) -> list[LayerInfo]:
    """The model's layers whose single output is [H, W, C] or [N] (input layers excluded), in order."""
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            shape = tuple(layer.output.shape[1:])
        except (AttributeError, ValueError):
            continue  # a layer with several outputs or never called on the model's graph
        if len(shape) in (1, 3) and all(isinstance(d, int) for d in shape):
            layers.append(LayerInfo(layer.name, type(layer).__name__, shape))
    return layers


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


def compiled(model):
    """``model`` as a traced TensorFlow graph function for inference.

    Calling a Keras model eagerly costs ~30 ms per image here, its traced graph ~1.6 ms: the difference between a
    sluggish and an instant click. The signature leaves the batch axis open so every batch size shares one trace.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    function = tf.function(lambda images: model(images, training=False), input_signature=[spec])
    return lambda images: function(tf.convert_to_tensor(images, tf.float32))


class ActivationEngine:
    """Layer outputs of one model version for its test images, with bounded caches.

    Args:
        model: the Keras model.
        images: its test images [N, H, W, C].
        model_name: the name messages use.
        cache_bytes: the most bytes of forward passes (one per image, all layers) kept.
    """

    def __init__(self, model, images: np.ndarray, model_name: str, cache_bytes: int = DEFAULT_PASSES_BYTES) -> None:
        import keras

        self.model = model
        self.images = images
        self.model_name = model_name
        self.layers = visualisable_layers(model)
        self._layer_index = {info.name: i for i, info in enumerate(self.layers)}
        self._probe = compiled(keras.Model(model.inputs, [model.get_layer(info.name).output for info in self.layers]))
        self._passes: LRUCache[list[np.ndarray]] = LRUCache(max_bytes=cache_bytes)
        self._submodels: LRUCache[object] = LRUCache(16)
        self._predictions: np.ndarray | None = None
        self._lock = threading.Lock()

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

    def check_image(self, index: int) -> int:
        """Return ``index`` if it addresses a test image, else raise :class:`ImageOutOfRange`."""
        if not 0 <= index < self.n_images:
            raise ImageOutOfRange(f"image index {index} is out of range: the test set has images 0-{self.n_images - 1}")
        return index

    def _forward(self, index: int) -> list[np.ndarray]:
        self.check_image(index)

        def run() -> list[np.ndarray]:
            outputs = self._probe(self.images[index : index + 1])
            return [np.asarray(out)[0] for out in outputs]

        return self._passes.get_or_compute(index, run)

    def activations(self, layer_name: str, index: int) -> np.ndarray:
        """Output of layer ``layer_name`` for test image ``index``: [H, W, C] or [N], float32 (cached)."""
        position = self._layer_index[self.layer(layer_name).name]
        return self._forward(index)[position]

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
        """Class probabilities of test image ``index`` (the model's final output, softmaxed if needed)."""
        final_layer = self.model.layers[-1].name
        if final_layer not in self._layer_index:
            raise LayerNotFound(f"the final layer {final_layer!r} of {self.model_name!r} has no class output")
        return as_probabilities(self._forward(index)[self._layer_index[final_layer]])

    def submodel(self, layer_name: str):
        """The truncated model ``keras.Model(model.inputs, layer.output)`` for ``layer_name`` (cached)."""
        import keras

        info = self.layer(layer_name)
        model = self.model
        return self._submodels.get_or_compute(
            info.name, lambda: compiled(keras.Model(model.inputs, model.get_layer(info.name).output))
        )

    def iter_layer_batches(
        self, layer_name: str, indices: np.ndarray | None = None, batch_size: int = DEFAULT_BATCH_SIZE
    ):
        """Yield ``(batch_indices, outputs)`` of ``layer_name`` over the test set, one batch at a time.

        Peak memory is one batch of activations, so a 10,000-image test set never needs all of them at once.
        """
        submodel = self.submodel(layer_name)
        indices = np.arange(self.n_images) if indices is None else np.asarray(indices, dtype=np.int64)
        for start in range(0, len(indices), batch_size):
            batch = indices[start : start + batch_size]
            yield batch, np.asarray(submodel(self.images[batch]))

    def predictions(self) -> np.ndarray:
        """Class probabilities of the whole test set, [N, classes], computed once per model version."""
        with self._lock:
            if self._predictions is None:
                final_layer = self.model.layers[-1].name
                batches = [out for _, out in self.iter_layer_batches(final_layer)]
                self._predictions = as_probabilities(np.concatenate(batches))
            return self._predictions
