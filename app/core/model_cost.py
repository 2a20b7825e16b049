"""What a model costs to explore, per image and per layer, known before any image goes through it.

A 25 kB model (``UpSampling2D`` ×100 then a 32-filter conv) had a few hundred parameters and passed every file
check, yet one image's forward pass made 1.0 GB of activations: a viewer's grid request took 23 s and grew the
worker by 3.8 GB; SmoothGrad (32 copies) and integrated gradients (up to 513) multiplied that. Here the cost of a
model is read from its traced graph (every layer's output shape, nested models' layers included) and its
layers' weights, and :func:`check_model` refuses a model over :class:`ModelLimits` before its first forward pass;
:func:`plan_gradient_work` prices a gradient method's request before it starts and splits its batch so memory
stays bounded.

Per layer (the :class:`~app.core.layer_cost.LayerCost` of training configurations): output values per image,
parameters, and forward FLOPs per image (a multiply-add counts 2). FLOPs are exact for Dense and convolutions:
every weight matrix of ``k`` values is applied once per output position (2·k per position, ``k`` = kernel height ×
width × input channels × filters for Conv2D, inputs × units for Dense, kernel × channels for a depthwise
convolution); layers without weight matrices (pooling, upsampling, activations, normalisation, additions) are
counted as one operation per output value. A nested model's inner layers are counted where they are listed, its
own entry costs its output only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.core.errors import InvalidInput
from app.core.layer_cost import BACKWARD_FACTOR, BYTES_PER_FLOAT, TRAINING_FLOPS_FACTOR, LayerCost, flops_text
from app.core.layer_graph import NESTED_SEPARATOR
from app.core.limits import format_bytes
from app.core.model_files import DEFAULT_MODEL_MAX_BYTES

GB = 10**9
GFLOP = 10**9


@dataclass(frozen=True)
class ModelLimits:
    """What one model may cost a worker (settings ``MODEL_ACTIVATION_MB``, ``MODEL_GFLOPS``,
    ``GRADIENT_MEMORY_MB``, ``GRADIENT_GFLOPS``; the file limits follow ``MAX_UPLOAD_BYTES``).

    Measured with ``python bench/model_cost.py`` (2 cores, TF 2.21; 10 classes; probe: one image through every
    layer at once, after tracing):

    =================================  ==========  ===========  ===========  ======
    model                              parameters  activations  forward      probe
    =================================  ==========  ===========  ===========  ======
    mnist-cnn (bundled, 28×28×1)          208,982     158.3 kB  6.4 MFLOP    1 ms
    MobileNetV2, 224×224×3              2,270,794      87.3 MB  620.7 MFLOP  87 ms
    ResNet50, 224×224×3                23,608,202     148.5 MB  7.7 GFLOP    276 ms
    UpSampling2D ×100, conv 32 (28×28)        650       1.0 GB  4.8 GFLOP    refused
    =================================  ==========  ===========  ===========  ======

    Attributes:
        max_file_bytes: a model file's unpacked members, its weights and its declared variables
            (``MAX_UPLOAD_BYTES``: a valid model's variables are all in its weights file).
        max_activation_bytes: one image's forward pass over every layer (what the explorer's probe computes and
            caches at once). 400 MB admits ResNet50 (148.5 MB) with 2.7× margin and refuses the UpSampling model.
        max_flops: forward FLOPs of one image. 50 GFLOP admits ResNet50 (7.7) with 6.5× margin; at the
            28 GFLOP/s ResNet50's probe ran at, a view of such a model takes under 2 s.
        gradient_memory_bytes: activations of one batch of a gradient method (forward and backward,
            ×:data:`~app.core.layer_cost.BACKWARD_FACTOR`); larger requests run in batches of this size.
            1.6 GB holds one image of the largest model admitted (4 × 400 MB): ResNet50 runs 2 images a batch.
        gradient_flops: one gradient request (forward and backward, ×3, for every copy or path step). 2 TFLOP
            admits ResNet50's default integrated gradients (65 images: 1.5 TFLOP, about a minute here) and
            SmoothGrad (33: 0.76 TFLOP); its 512 steps (11.9 TFLOP) are refused with what fits.
    """

    max_file_bytes: int = DEFAULT_MODEL_MAX_BYTES
    max_activation_bytes: int = 400_000_000
    max_flops: int = 50 * GFLOP
    gradient_memory_bytes: int = 1_600_000_000
    gradient_flops: int = 2000 * GFLOP


DEFAULT_MODEL_LIMITS = ModelLimits()


@dataclass(frozen=True)
class ModelCost:
    """The cost of one image through a model.

    Attributes:
        input_shape: [H, W, C] of the images.
        layers: every layer with a known output shape, in the model's order.
        parameters: weights of the model (its ``count_params()``).
        activation_bytes: the input and every layer's output for one image, float32.
        flops: forward FLOPs of one image.
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerCost, ...]
    parameters: int
    activation_bytes: int
    flops: int

    def gradient_bytes(self, images: int) -> int:
        """Activations of a forward and backward pass over ``images`` images at once."""
        return self.activation_bytes * BACKWARD_FACTOR * images

    def gradient_flops(self, images: int) -> int:
        """FLOPs of a forward and backward pass over ``images`` images."""
        return self.flops * TRAINING_FLOPS_FACTOR * images

    def layer(self, name: str) -> LayerCost:
        """The layer called ``name`` (KeyError if none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def until(self, name: str) -> ModelCost:
        """The cost of the model cut after layer ``name``: the layers listed up to it (in a branching model, also
        the branches listed before it: never an underestimate). KeyError if there is no such layer."""
        position = self.layers.index(self.layer(name))
        layers = self.layers[: position + 1]
        values = math.prod(self.input_shape) + sum(layer.activations for layer in layers)
        return ModelCost(self.input_shape, layers, sum(layer.parameters for layer in layers),
                         values * BYTES_PER_FLOAT, sum(layer.flops for layer in layers))

    def largest(self) -> LayerCost:
        """The layer with the most output values per image."""
        return max(self.layers, key=lambda layer: layer.activations)

    def as_dict(self) -> dict[str, Any]:
        """The totals as JSON data: ``parameters``, ``activation_bytes`` and ``flops`` per image."""
        return {"parameters": self.parameters, "activation_bytes": self.activation_bytes, "flops": self.flops}


def _layers_by_name(model, prefix: str = "") -> dict[str, Any]:
    """Every layer of ``model`` under the name the traced graph gives it (``outer/inner`` inside nested models)."""
    import keras

    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(_layers_by_name(layer, f"{prefix}{layer.name}{NESTED_SEPARATOR}"))
        found[prefix + layer.name] = layer
    return found


def _layer_cost(name: str, layer: Any, shape: tuple[int, ...]) -> LayerCost:
    import keras

    values = math.prod(shape)
    if isinstance(layer, keras.Model):  # its layers are listed and priced on their own
        return LayerCost(name, type(layer).__name__, shape, 0, values, 0)
    parameters = sum(math.prod(weight.shape) for weight in layer.weights)
    positions = values // shape[-1] if shape and shape[-1] else values
    matrices = sum(math.prod(weight.shape) for weight in layer.weights if len(weight.shape) >= 2)
    flops = 2 * matrices * positions + values
    return LayerCost(name, type(layer).__name__, shape, parameters, values, flops)


def model_cost(model, graph) -> ModelCost:
    """The per-image cost of ``model`` from its traced graph (:func:`app.core.layer_graph.trace_layers`).

    Args:
        model: the Keras model the graph was traced from.
        graph: its :class:`~app.core.layer_graph.LayerGraph` (every layer's output shape for the test images).

    Returns:
        The per-layer and total costs; layers whose output size is not known are left out.
    """
    objects = _layers_by_name(model)
    layers = []
    for verdict in graph.verdicts:
        shape = verdict.output_shape
        layer = objects.get(verdict.name)
        if layer is None or shape is None or not all(isinstance(d, int) for d in shape):
            continue
        layers.append(_layer_cost(verdict.name, layer, tuple(shape)))
    input_shape = tuple(int(d) for d in graph.inputs.shape[1:])
    values = math.prod(input_shape) + sum(layer.activations for layer in layers)
    return ModelCost(input_shape, tuple(layers), int(model.count_params()), values * BYTES_PER_FLOAT,
                     sum(layer.flops for layer in layers))


def check_model(cost: ModelCost, limits: ModelLimits = DEFAULT_MODEL_LIMITS) -> list[str]:
    """Every limit one image through the model breaks, each a sentence naming the layer most to blame.

    Returns:
        Sentences for the user (empty when the model fits).
    """
    problems = []
    if cost.activation_bytes > limits.max_activation_bytes:
        worst = cost.largest()
        problems.append(
            f"one image's pass through every layer makes {format_bytes(cost.activation_bytes)} of activations, the "
            f"limit is {format_bytes(limits.max_activation_bytes)} (MODEL_ACTIVATION_MB): {worst.name} "
            f"({worst.kind}) alone outputs {worst.shape_text} = {worst.activations:,} values"
        )
    if cost.flops > limits.max_flops:
        worst = max(cost.layers, key=lambda layer: layer.flops)
        problems.append(
            f"one image's pass costs {flops_text(cost.flops)}, the limit is {flops_text(limits.max_flops)} "
            f"(MODEL_GFLOPS): {worst.name} ({worst.kind}) costs the most, {flops_text(worst.flops)}"
        )
    return problems


class OverBudget(InvalidInput):
    """A gradient request that would cost more than a request may."""


@dataclass(frozen=True)
class GradientPlan:
    """How a gradient method's images go through the model.

    Attributes:
        images: forward and backward passes the request needs.
        batch: images per batch, so that a batch's activations stay within the gradient memory limit.
        flops: the whole request's FLOPs.
    """

    images: int
    batch: int
    flops: int


def plan_gradient_work(cost: ModelCost, images: int, what: str,
                       limits: ModelLimits = DEFAULT_MODEL_LIMITS) -> GradientPlan:
    """Price a gradient request of ``images`` forward and backward passes before it starts.

    Args:
        cost: the model's per-image cost.
        images: passes the request needs (1 for a gradient or Grad-CAM, samples + 1 for SmoothGrad, steps + 1 for
            integrated gradients).
        what: the request in words, for the message (``integrated gradients with 512 steps``).
        limits: the gradient budget.

    Returns:
        The plan: the batch size keeps memory under ``limits.gradient_memory_bytes``.

    Raises:
        OverBudget: the request's FLOPs exceed ``limits.gradient_flops``, or one image alone exceeds the memory
            limit; the message names the cost and what would fit.
    """
    flops = cost.gradient_flops(images)
    one = cost.gradient_bytes(1)
    if one > limits.gradient_memory_bytes:
        raise OverBudget(f"{what} needs {format_bytes(one)} of activations per image with this model (forward and "
                         f"backward), the limit is {format_bytes(limits.gradient_memory_bytes)} (GRADIENT_MEMORY_MB)")
    if flops > limits.gradient_flops:
        fits = limits.gradient_flops // max(1, cost.gradient_flops(1))
        raise OverBudget(
            f"{what} would cost {flops_text(flops)} ({images:,} images × 3 × {flops_text(cost.flops)} per image), "
            f"the limit is {flops_text(limits.gradient_flops)} (GRADIENT_GFLOPS): this model allows "
            f"{fits:,} images per request"
        )
    return GradientPlan(images, gradient_batch(cost, images, limits), flops)


def gradient_batch(cost: ModelCost, images: int, limits: ModelLimits = DEFAULT_MODEL_LIMITS) -> int:
    """How many of ``images`` gradient passes fit in one batch within ``limits.gradient_memory_bytes`` (at least
    one)."""
    return max(1, min(images, limits.gradient_memory_bytes // max(1, cost.gradient_bytes(1))))
