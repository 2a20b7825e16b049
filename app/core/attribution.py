"""Where the model looks: attribution maps for one image and one class, on ``tf.GradientTape``.

- **gradient**: the gradient of the class's logit with respect to the pixels (saliency: its largest absolute value
  over the channels).
- **smoothgrad**: the same gradient averaged over ``samples`` noisy copies of the image (noise σ as a share of the
  test set's value range), which removes most of the speckle of the plain gradient.
- **gradcam**: at a conv layer with maps A_k, the weights α_k = mean over the map of ∂logit/∂A_k, and
  ReLU(Σ_k α_k A_k), upsampled bilinearly to the input size; by default at the last conv layer whose maps are at
  least 7×7 (:func:`default_cam_layer`).
- **integrated_gradients**: (x − x') times the mean gradient on the straight path from a black image x' to x
  (trapezoid rule over ``steps`` intervals); the attributions add up to logit(x) − logit(x'), which the answer
  carries so a reader can check it.

Every method works on the *logits*: for a model that ends in softmax, the last layer's pre-activation (its input
times kernel plus bias), since the gradient of a saturated probability is ~0 and says nothing. The gradient models
are built on the activation engine's traced layer graph (so layers of nested models work too) and cached per model
version and layer in :class:`GradientModelCache`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.cache import LRUCache
from app.core.errors import InvalidInput
from app.core.layer_graph import NESTED_SEPARATOR
from app.core.limits import pixel_range
from app.core.model_cost import (
    DEFAULT_MODEL_LIMITS,
    GradientPlan,
    ModelCost,
    ModelLimits,
    gradient_batch,
    plan_gradient_work,
)

if TYPE_CHECKING:
    from app.core.activations import ActivationEngine
    from app.core.store import LoadedModel

METHODS = ("gradient", "smoothgrad", "gradcam", "integrated_gradients")
DEFAULT_SAMPLES = 32
MAX_SAMPLES = 128
DEFAULT_NOISE = 0.15  # share of the value range: SmoothGrad's paper finds 10-20 % works best
DEFAULT_STEPS = 64
MAX_STEPS = 512
# Grad-CAM's default layer has maps at least this many positions on a side (see default_cam_layer).
MIN_CAM_SIDE = 7
# Gradient models kept per process: one set per opened model version (the store keeps 4 opened).
MODELS_KEPT = 4


class NotAMapLayer(InvalidInput):
    """Grad-CAM needs a layer with maps (height × width × channels)."""


@dataclass(frozen=True)
class Attribution:
    """One attribution map.

    Attributes:
        method: one of :data:`METHODS`.
        class_index: the class whose logit is explained.
        map: float32 [H, W] at the input's size: saliency (gradient, smoothgrad; ≥ 0), the Grad-CAM heat (≥ 0),
            or the integrated gradients summed over the channels (signed).
        values: float32 [H, W, C] per-pixel values before the channels are merged (the gradient, the averaged
            gradient, the attributions); for Grad-CAM the coarse map at the layer's size [h, w].
        logit: the class's logit for the image.
        extras: method-specific numbers: ``layer`` (Grad-CAM), ``samples``/``noise`` (SmoothGrad), ``steps``,
            ``baseline_logit``, ``logit_difference`` and ``attribution_sum`` (integrated gradients).
    """

    method: str
    class_index: int
    map: np.ndarray
    values: np.ndarray
    logit: float
    extras: dict[str, Any] = field(default_factory=dict)


def value_range(images: np.ndarray) -> tuple[float, float]:
    """The smallest and largest finite pixel value of a test set (what "black" and "white" are for this model),
    read from its first images (:func:`~app.core.limits.pixel_range`)."""
    found = pixel_range(images)
    if found is None:
        return 0.0, 1.0
    low, high = found
    return (low, high) if high > low else (low, low + 1.0)


def has_activation(layer) -> bool:
    """True when ``layer`` applies a non-linear activation after its linear part."""
    import keras

    activation = getattr(layer, "activation", None)
    return activation is not None and activation is not keras.activations.linear


def strips_activation(layer) -> bool:
    """True when :func:`pre_activation` can compute this layer's output without its activation: a Dense or a
    channels-last convolution with a non-linear activation, or an activation layer itself."""
    import keras

    if isinstance(layer, keras.layers.Activation | keras.layers.Softmax | keras.layers.ReLU):
        return True
    if not has_activation(layer):
        return False
    if isinstance(layer, keras.layers.Dense):
        return True
    return hasattr(layer, "convolution_op") and getattr(layer, "data_format", "channels_last") == "channels_last"


def pre_activation(layer, inputs):
    """``layer``'s output before its activation, computed from what it was called on (see :func:`strips_activation`
    for which layers; call only for those).

    A Dense layer is ``inputs @ kernel + bias``, a convolution its own ``convolution_op`` plus bias: the same
    weights, without the activation, so nothing is copied and no layer changes state.
    """
    import keras

    if isinstance(layer, keras.layers.Activation | keras.layers.Softmax | keras.layers.ReLU):
        return inputs
    if isinstance(layer, keras.layers.Dense):
        outputs = keras.ops.matmul(inputs, layer.kernel)
    else:
        outputs = layer.convolution_op(inputs, layer.kernel)
    if getattr(layer, "use_bias", False) and layer.bias is not None:
        outputs = outputs + layer.bias
    return outputs


def _head(graph, position: int, linear: bool) -> tuple[Any, Callable]:
    """The tensor of ``graph`` to compute and the function that turns it into layer ``position``'s output, its
    pre-activation when ``linear`` and the layer allows it."""
    layer = graph.layer_objects[position]
    called_on = graph.layer_inputs[position]
    if linear and called_on is not None and strips_activation(layer):
        return called_on, lambda tensor: pre_activation(layer, tensor)
    return graph.tensors[position], lambda tensor: tensor


def _is_softmax(layer) -> bool:
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


class GradientModels:
    """Differentiable functions of one model version, built on its engine's traced graph and cached per layer.

    Args:
        engine: the activation engine of the model version (its test set gives the value range).
        limits: the gradient budget a request is priced against (:meth:`plan`).
    """

    def __init__(self, engine: ActivationEngine, limits: ModelLimits = DEFAULT_MODEL_LIMITS) -> None:
        self.engine = engine
        self.graph = engine.graph
        self.limits = limits
        self.cost = engine.cost
        self.low, self.high = value_range(engine.images)
        self.image_shape = tuple(engine.images.shape[1:])
        self._built: LRUCache[Any] = LRUCache(32)
        self._lock = threading.RLock()  # builders call each other (input_gradient builds logits)

    def plan(self, images: int, what: str, layer_name: str | None = None) -> GradientPlan:
        """Price a request of ``images`` gradient passes (see :func:`~app.core.model_cost.plan_gradient_work`) through
        the whole model, or up to ``layer_name``; raises :class:`~app.core.model_cost.OverBudget` naming the cost
        when it is over the budget."""
        return plan_gradient_work(self.cost_until(layer_name), images, what, self.limits)

    def batch_size(self, images: int, layer_name: str | None = None) -> int:
        """How many of ``images`` gradient passes (up to ``layer_name``) go in one batch within the memory limit."""
        return gradient_batch(self.cost_until(layer_name), images, self.limits)

    def cost_until(self, layer_name: str | None) -> ModelCost:
        """The model's cost per image, cut after ``layer_name`` (the whole model for None)."""
        if layer_name is None:
            return self.cost
        return self.cost.until(self.engine.layer(layer_name).name)

    def position(self, layer_name: str) -> int:
        """Index of ``layer_name`` in the graph (raises :class:`~app.core.activations.LayerNotFound`)."""
        info = self.engine.layer(layer_name)
        return next(i for i, candidate in enumerate(self.graph.layers) if candidate.name == info.name)

    def logits_head(self) -> tuple[Any, Callable]:
        """(tensor, function) giving the class logits: the output layer's pre-activation when it ends in softmax,
        the input of a final softmax layer, else the model's output itself (already logits)."""
        name = self.graph.output_layer
        if name is None:
            return self.graph.output, lambda tensor: tensor
        position = self.position(name)
        layer = self.graph.layer_objects[position]
        return _head(self.graph, position, linear=_is_softmax(layer))

    def cached(self, key: tuple, build: Callable[[], Any]):
        """The function built by ``build`` for ``key``, built once (bounded LRU, shared by every caller)."""
        with self._lock:  # tf.function tracing is not meant to race; building once per key is cheap anyway
            return self._built.get_or_compute(key, build)

    def objective(self, layer_name: str) -> Callable:
        """``images -> layer output`` with the batch axis, before the activation where the layer has one (the
        quantity feature visualisation maximises); for the output layer of a softmax model, the logits."""
        position = self.position(layer_name)

        def build():
            if self.graph.layers[position].name == self.graph.output_layer:
                tensor, transform = self.logits_head()
            else:
                tensor, transform = _head(self.graph, position, linear=True)
            submodel = self.graph.model(tensor)
            return lambda images: transform(submodel(images, training=False))

        return self.cached(("objective", position), build)

    def logits(self) -> Callable:
        """``images -> logits`` [B, classes]."""

        def build():
            tensor, transform = self.logits_head()
            submodel = self.graph.model(tensor)
            return lambda images: transform(submodel(images, training=False))

        return self.cached(("logits",), build)

    def input_gradient(self) -> Callable:
        """A traced ``(images [B, H, W, C], class) -> (logits [B], gradients [B, H, W, C])`` of that class's logit."""

        def build():
            import tensorflow as tf

            logits = self.logits()
            spec = tf.TensorSpec((None, *self.image_shape), tf.float32)

            @tf.function(input_signature=[spec, tf.TensorSpec((), tf.int32)], autograph=False)
            def gradient(images, class_index):
                with tf.GradientTape() as tape:
                    tape.watch(images)
                    scores = logits(images)[:, class_index]
                return scores, tape.gradient(scores, images)

            return gradient

        return self.cached(("input_gradient",), build)

    def cam(self, layer_name: str) -> Callable:
        """A traced ``(image [1, H, W, C], class) -> (maps [1, h, w, K], gradients [1, h, w, K], logit [1])`` at
        ``layer_name``'s output (raises :class:`NotAMapLayer` for a layer without maps)."""
        position = self.position(layer_name)
        info = self.graph.layers[position]
        if not info.is_map:
            raise NotAMapLayer(f"Grad-CAM needs a layer with maps; {info.name} is a vector of {info.n_units} nodes")
        if not reaches_output(info.name):
            raise NotAMapLayer(f"Grad-CAM cannot use {info.name}: it is inside a nested model, whose output the "
                               "model computes as one call; choose a layer of the outer model")

        def build():
            import tensorflow as tf

            head, transform = self.logits_head()
            submodel = self.graph.model([self.graph.tensors[position], head])
            spec = tf.TensorSpec((None, *self.image_shape), tf.float32)

            @tf.function(input_signature=[spec, tf.TensorSpec((), tf.int32)], autograph=False)
            def maps_and_gradients(images, class_index):
                with tf.GradientTape() as tape:
                    maps, scores = submodel(images, training=False)
                    tape.watch(maps)
                    score = transform(scores)[:, class_index]
                return maps, tape.gradient(score, maps), score

            return maps_and_gradients

        return self.cached(("cam", position), build)


class GradientModelCache:
    """The :class:`GradientModels` of the last few opened model versions (bounded; keyed by name and version)."""

    def __init__(self, maxsize: int = MODELS_KEPT, limits: ModelLimits = DEFAULT_MODEL_LIMITS) -> None:
        self._models: LRUCache[GradientModels] = LRUCache(maxsize)
        self.limits = limits

    def for_model(self, loaded: LoadedModel) -> GradientModels:
        """The gradient models of ``loaded``'s version, built on first use."""
        return self._models.get_or_compute(loaded.key, lambda: GradientModels(loaded.engine, self.limits))


def reaches_output(layer_name: str) -> bool:
    """Whether the class scores are computed from this layer's traced output: not for a layer inside a nested
    model (the trace records it on a path of its own, beside the nested model's single call)."""
    return NESTED_SEPARATOR not in layer_name


def check_method(method: Any) -> str:
    """``method`` if it is one of :data:`METHODS`, else :class:`InvalidInput` listing them."""
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidInput(f"the method must be one of {', '.join(METHODS)}, got {str(method)[:40]!r}")
    return method


def check_class(class_index: int, n_classes: int) -> int:
    """``class_index`` if the model has that class, else :class:`InvalidInput`."""
    if isinstance(class_index, bool) or not isinstance(class_index, int) or not 0 <= class_index < n_classes:
        raise InvalidInput(f"the class must be a number from 0 to {n_classes - 1}, got {str(class_index)[:40]!r}")
    return class_index


def _saliency(gradients: np.ndarray) -> np.ndarray:
    """[H, W, C] -> [H, W]: the largest absolute value over the channels (Simonyan et al.'s saliency map)."""
    return np.abs(gradients).max(axis=-1).astype(np.float32)


def gradient(models: GradientModels, image: np.ndarray, class_index: int) -> Attribution:
    """Vanilla gradient of the class's logit with respect to the pixels of ``image`` [H, W, C]."""
    models.plan(1, "the gradient")
    scores, gradients = models.input_gradient()(image[np.newaxis].astype(np.float32), np.int32(class_index))
    values = np.asarray(gradients)[0]
    return Attribution("gradient", class_index, _saliency(values), values, float(scores[0]))


def _batched_gradients(models: GradientModels, images: np.ndarray, class_index: int,
                       batch: int) -> tuple[np.ndarray, np.ndarray]:
    """``(logits [N], gradients [N, H, W, C])`` of ``images``, ``batch`` images at a time (one call when they fit)."""
    function = models.input_gradient()
    scores, gradients = [], []
    for start in range(0, len(images), batch):
        part_scores, part_gradients = function(images[start:start + batch].astype(np.float32), np.int32(class_index))
        scores.append(np.asarray(part_scores))
        gradients.append(np.asarray(part_gradients))
    return np.concatenate(scores), np.concatenate(gradients)


def smoothgrad(models: GradientModels, image: np.ndarray, class_index: int, samples: int = DEFAULT_SAMPLES,
               noise: float = DEFAULT_NOISE, seed: int = 0) -> Attribution:
    """The gradient averaged over ``samples`` copies of ``image`` with Gaussian noise of σ = ``noise`` × the value
    range (a fixed ``seed`` makes the map reproducible), in batches that fit the gradient memory limit.

    Raises:
        OverBudget: the copies would cost more than a request may (see :meth:`GradientModels.plan`).
    """
    plan = models.plan(samples + 1, f"SmoothGrad with {samples} samples")
    rng = np.random.default_rng(seed)
    sigma = noise * (models.high - models.low)
    batch = image[np.newaxis] + rng.normal(0.0, sigma, (samples, *image.shape))
    _, gradients = _batched_gradients(models, batch, class_index, plan.batch)
    scores, _ = models.input_gradient()(image[np.newaxis].astype(np.float32), np.int32(class_index))
    values = gradients.mean(axis=0)
    return Attribution("smoothgrad", class_index, _saliency(values), values, float(scores[0]),
                       {"samples": samples, "noise": noise})


def upsample(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a [h, w] map to ``size`` (the input's height and width), as Grad-CAM overlays do: each
    output pixel's centre is mapped onto the map (half-pixel centres, clamped at the edges) and its value blended
    from the four nearest positions, so a coarse map becomes a smooth gradient rather than blocks."""
    import tensorflow as tf

    resized = tf.image.resize(heat[np.newaxis, :, :, np.newaxis].astype(np.float32), size, method="bilinear")
    return np.asarray(resized)[0, :, :, 0]


def gradcam(models: GradientModels, image: np.ndarray, class_index: int, layer_name: str) -> Attribution:
    """Grad-CAM of the class's logit at conv layer ``layer_name`` (``values`` holds the map at the layer's size)."""
    models.plan(1, "Grad-CAM")
    maps, gradients, score = models.cam(layer_name)(image[np.newaxis].astype(np.float32), np.int32(class_index))
    maps, gradients = np.asarray(maps)[0], np.asarray(gradients)[0]
    weights = gradients.mean(axis=(0, 1))
    coarse = np.maximum((maps * weights).sum(axis=-1), 0.0).astype(np.float32)
    heat = upsample(coarse, image.shape[:2])
    return Attribution("gradcam", class_index, np.maximum(heat, 0.0), coarse, float(score[0]),
                       {"layer": models.engine.layer(layer_name).name})


def integrated_gradients(models: GradientModels, image: np.ndarray, class_index: int,
                         steps: int = DEFAULT_STEPS) -> Attribution:
    """Integrated gradients from a black image (every pixel the test set's smallest value) to ``image``.

    The path integral is the trapezoid rule over ``steps`` equal intervals: the ``steps + 1`` points go through the
    model in batches that fit the gradient memory limit (one batch when they all fit). ``extras`` carries the logit
    difference the attributions should add up to and their sum.

    Raises:
        OverBudget: the steps would cost more than a request may (see :meth:`GradientModels.plan`).
    """
    plan = models.plan(steps + 1, f"integrated gradients with {steps} steps")
    baseline = np.full_like(image, models.low, dtype=np.float32)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)[:, np.newaxis, np.newaxis, np.newaxis]
    path = baseline[np.newaxis] + alphas * (image - baseline)[np.newaxis]
    scores, gradients = _batched_gradients(models, path, class_index, plan.batch)
    gradients = gradients.astype(np.float64)
    mean_gradient = ((gradients[:-1] + gradients[1:]) / 2).mean(axis=0)
    values = ((image - baseline) * mean_gradient).astype(np.float32)
    scores = np.asarray(scores, dtype=np.float64)
    return Attribution(
        "integrated_gradients", class_index, values.sum(axis=-1), values, float(scores[-1]),
        {"steps": steps, "baseline_logit": float(scores[0]), "logit_difference": float(scores[-1] - scores[0]),
         "attribution_sum": float(values.astype(np.float64).sum())},
    )


def default_cam_layer(engine: ActivationEngine) -> str | None:
    """Grad-CAM's layer when none is chosen: the last convolution whose maps are at least :data:`MIN_CAM_SIDE`
    positions on each side (else the last such layer of any kind); a model without one gets its layer with the
    largest maps (the last of those). None for a model without map layers.

    Grad-CAM's usual choice is the last map layer, the most semantic maps; but on a small input that layer is a
    few positions across (mnist-cnn's Conv2D_3 is 3×3), and its heat upsampled to the input is a blob that says
    little about which strokes matter. A slightly earlier layer (Conv2D_2, 11×11) still has class-specific maps.
    """
    maps = [info for info in engine.layers if info.is_map and reaches_output(info.name)]
    if not maps:
        return None
    fine = [info for info in maps if min(info.output_shape[:2]) >= MIN_CAM_SIDE]
    convolutions = [info for info in fine if "Conv" in info.class_name]
    if convolutions or fine:
        return (convolutions or fine)[-1].name
    largest = max(info.output_shape[0] * info.output_shape[1] for info in maps)
    return [info.name for info in maps if info.output_shape[0] * info.output_shape[1] == largest][-1]


def attribute(models: GradientModels, image: np.ndarray, method: str, class_index: int, layer_name: str | None = None,
              samples: int = DEFAULT_SAMPLES, noise: float = DEFAULT_NOISE, steps: int = DEFAULT_STEPS) -> Attribution:
    """The attribution of ``method`` (checked) for ``image`` [H, W, C] and ``class_index``.

    Args:
        layer_name: Grad-CAM's layer (default: :func:`default_cam_layer`); ignored by the other methods.
        samples, noise: SmoothGrad's copies (1..:data:`MAX_SAMPLES`) and noise level (0..1 of the value range).
        steps: integrated gradients' intervals (1..:data:`MAX_STEPS`).

    Raises:
        InvalidInput: an unknown method, a parameter out of range, or a Grad-CAM layer without maps;
            :class:`~app.core.model_cost.OverBudget` for a request that would cost more than the gradient budget.
        LayerNotFound: no such layer.
    """
    method = check_method(method)
    if method == "gradient":
        return gradient(models, image, class_index)
    if method == "smoothgrad":
        if not 1 <= samples <= MAX_SAMPLES:
            raise InvalidInput(f"samples must be between 1 and {MAX_SAMPLES}, got {samples}")
        if not 0.0 <= noise <= 1.0:
            raise InvalidInput(f"noise must be between 0 and 1 (a share of the value range), got {noise}")
        return smoothgrad(models, image, class_index, samples, noise)
    if method == "gradcam":
        layer_name = layer_name or default_cam_layer(models.engine)
        if layer_name is None:
            raise NotAMapLayer("Grad-CAM needs a layer with maps, and this model has none")
        return gradcam(models, image, class_index, layer_name)
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidInput(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    return integrated_gradients(models, image, class_index, steps)
