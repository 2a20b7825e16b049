"""What a training configuration will cost, from its arithmetic alone: checked before any Keras model is built.

The issue's hostile configuration (six 512-filter 1x1 conv layers, no pooling, four 4,096-unit dense layers) was
only refused after Keras had built it, and its worker reached 13 GB in 57 s. :func:`estimate` walks the layers
exactly as :func:`app.core.training.build_model` would make them (same names, valid padding, pooling after every
conv layer but the last) and :func:`check_budget` says which layer breaks which limit, so the API can answer 400
in microseconds.

Calibration: ``python bench/training_cost.py`` trains a few batches of several configurations in fresh processes and
compares their peak RSS with the estimate; the measured numbers are written next to the constants below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.core.errors import InvalidInput
from app.core.layer_cost import BACKWARD_FACTOR, BYTES_PER_FLOAT, TRAINING_FLOPS_FACTOR, LayerCost, flops_text
from app.core.limits import format_bytes
from app.core.training import MAX_PARAMETERS, MAX_TRAIN_IMAGES, ConfigError, TrainingConfig, shrink_problem

# Per parameter, float32: the weight, its gradient and up to two optimizer slots (RMSprop with momentum, Adam).
PARAMETER_COPIES = 4


@dataclass(frozen=True)
class CostLimits:
    """What one training job may use.

    Attributes:
        max_parameters: weights of the model (5,000,000: the cap build_model has always applied).
        max_activation_bytes: activations of one batch with the backward pass (:data:`BACKWARD_FACTOR`).
        max_flops_per_epoch: forward plus backward over the training images, once.
    """

    # Defaults from bench/training_cost.py and bench/memory_limit.py on a 2-core machine:
    # - 1 GB of activations: a training worker runs under a 3 GiB RLIMIT_DATA (app/jobs/memory_limit.py), of which
    #   TensorFlow, the model and a 60,000-image dataset take ~1.2 GB; the blog config at its batch of 64 needs
    #   39 MB (25x under the limit), at batch 1536 it needs 0.94 GB and trains under that RLIMIT.
    # - 30 TFLOP per epoch: training ran at 11-49 GFLOP/s, so about 10-45 minutes per epoch; the blog's config is
    #   19 MFLOP per image, 1.2 TFLOP per 60,000-image epoch (~1 minute measured, 26x under the limit).
    max_parameters: int = MAX_PARAMETERS
    max_activation_bytes: int = 1_000_000_000
    max_flops_per_epoch: int = 30 * 10**12


DEFAULT_LIMITS = CostLimits()


@dataclass(frozen=True)
class CostEstimate:
    """The cost of training a configuration, layer by layer and in total.

    Attributes:
        layers: in build order.
        input_shape: [H, W, C] of the images.
        batch_size, train_images: from the config and the dataset.
        parameters: total weights (equals the built model's ``count_params()``).
        activation_bytes: memory of one training batch's activations (forward x batch x BACKWARD_FACTOR).
        parameter_bytes: weights, gradients and optimizer slots.
        flops_per_image: forward pass of one image.
        flops_per_epoch: TRAINING_FLOPS_FACTOR x forward x train images.
    """

    layers: tuple[LayerCost, ...]
    input_shape: tuple[int, int, int]
    batch_size: int
    train_images: int
    parameters: int = field(init=False)
    activation_bytes: int = field(init=False)
    parameter_bytes: int = field(init=False)
    flops_per_image: int = field(init=False)
    flops_per_epoch: int = field(init=False)

    def __post_init__(self) -> None:
        stored = math.prod(self.input_shape) + sum(layer.activations for layer in self.layers if layer.stores_output)
        totals = {
            "parameters": sum(layer.parameters for layer in self.layers),
            "activation_bytes": stored * BYTES_PER_FLOAT * self.batch_size * BACKWARD_FACTOR,
            "flops_per_image": sum(layer.flops for layer in self.layers),
        }
        totals["parameter_bytes"] = totals["parameters"] * BYTES_PER_FLOAT * PARAMETER_COPIES
        totals["flops_per_epoch"] = TRAINING_FLOPS_FACTOR * totals["flops_per_image"] * self.train_images
        for key, value in totals.items():  # frozen: the totals are derived once, here
            object.__setattr__(self, key, value)

    def layer(self, name: str) -> LayerCost:
        """The layer called ``name`` (KeyError if none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _conv(name: str, height: int, width: int, channels: int, filters: int, kernel: int) -> LayerCost:
    out_h, out_w = height - kernel + 1, width - kernel + 1  # Keras' default "valid" padding, stride 1
    macs = out_h * out_w * filters * kernel * kernel * channels
    return LayerCost(name, "Conv2D", (out_h, out_w, filters), (kernel * kernel * channels + 1) * filters,
                     out_h * out_w * filters, 2 * macs)


def _dense(name: str, inputs: int, units: int) -> LayerCost:
    return LayerCost(name, "Dense", (units,), (inputs + 1) * units, units, 2 * inputs * units)


def estimate(
    config: TrainingConfig,
    input_shape: tuple[int, int, int],
    n_classes: int,
    train_images: int | None = None,
) -> CostEstimate:
    """The cost of training ``config`` on images of ``input_shape``, without building the model.

    Args:
        config: the training configuration (already type-checked by parse_config).
        input_shape: [H, W, C] of the dataset's images.
        n_classes: outputs of the final dense layer.
        train_images: images per epoch; default ``config.max_train`` or else the most a dataset may have
            (MAX_TRAIN_IMAGES), so an unknown dataset size is never underestimated.

    Returns:
        The per-layer and total costs.

    Raises:
        InvalidInput: the layers shrink the image below one pixel (:func:`~app.core.training.shrink_problem`'s
            sentence, as build_model's).
    """
    problem = shrink_problem(config, input_shape)
    if problem:
        raise InvalidInput(problem)
    height, width, channels = (int(d) for d in input_shape)
    layers: list[LayerCost] = []
    for i, conv in enumerate(config.conv_layers, start=1):
        layer = _conv(f"Conv2D_{i}", height, width, channels, conv.filters, conv.kernel)
        layers.append(layer)
        height, width, channels = layer.output_shape
        if config.pool_size and i < len(config.conv_layers):  # build_model pools after every conv but the last
            pool = config.pool_size
            out_h, out_w = height // pool, width // pool
            layers.append(LayerCost(f"Max_Pool_{i}", "MaxPooling2D", (out_h, out_w, channels), 0,
                                    out_h * out_w * channels, out_h * out_w * channels * pool * pool))
            height, width = out_h, out_w
    flat = height * width * channels
    layers.append(LayerCost("Flatten", "Flatten", (flat,), 0, flat, 0))
    inputs = flat
    units = [dense.units for dense in config.dense_layers] + [n_classes]
    for i, count in enumerate(units, start=1):
        layers.append(_dense(f"Dense_{i}", inputs, count))
        inputs = count
    images = train_images if train_images is not None else (config.max_train or MAX_TRAIN_IMAGES)
    return CostEstimate(tuple(layers), (int(input_shape[0]), int(input_shape[1]), int(input_shape[2])),
                        config.batch_size, images)


def check_budget(cost: CostEstimate, limits: CostLimits = DEFAULT_LIMITS) -> list[str]:
    """Every limit the estimate breaks, each as a sentence naming the layer most to blame and what to change.

    Args:
        cost: from :func:`estimate`.
        limits: the budget of one training job.

    Returns:
        Sentences for the user (empty when the configuration fits).
    """
    problems = []
    if cost.parameters > limits.max_parameters:
        worst = max(cost.layers, key=lambda layer: layer.parameters)
        problems.append(
            f"the model would have {cost.parameters:,} parameters, the cap is {limits.max_parameters:,}: "
            f"{worst.name} alone has {worst.parameters:,} ({_inputs_text(cost, worst)}); "
            "add pooling, use fewer filters or fewer units"
        )
    if cost.activation_bytes > limits.max_activation_bytes:
        worst = max((layer for layer in cost.layers if layer.stores_output), key=lambda layer: layer.activations)
        problems.append(
            f"{worst.name} outputs {worst.shape_text} = {worst.activations:,} values per image; at batch "
            f"{cost.batch_size} the activations of all layers need {format_bytes(cost.activation_bytes)} to train, "
            f"the limit is {format_bytes(limits.max_activation_bytes)}: use a smaller batch, pooling or fewer filters"
        )
    if cost.flops_per_epoch > limits.max_flops_per_epoch:
        worst = max(cost.layers, key=lambda layer: layer.flops)
        problems.append(
            f"one epoch over {cost.train_images:,} images would take {flops_text(cost.flops_per_epoch)}, the limit "
            f"is {flops_text(limits.max_flops_per_epoch)}: {worst.name} costs the most, "
            f"{flops_text(worst.flops)} per image; use fewer filters, pooling, or fewer training images"
        )
    return problems


def _inputs_text(cost: CostEstimate, layer: LayerCost) -> str:
    """How a layer's parameter count arises, e.g. ``401,408 inputs × 4,096 units``."""
    position = cost.layers.index(layer)
    previous = cost.layers[position - 1].output_shape if position else cost.input_shape
    if layer.kind == "Dense":
        return f"{math.prod(previous):,} inputs × {layer.output_shape[0]:,} units"
    kernel = previous[0] - layer.output_shape[0] + 1  # valid padding: out = in - kernel + 1
    return f"{kernel}×{kernel} kernels × {previous[-1]} input channels × {layer.output_shape[-1]} filters"


def refuse_over_budget(
    config: TrainingConfig, input_shape: tuple[int, int, int], n_classes: int, train_images: int,
    limits: CostLimits = DEFAULT_LIMITS,
) -> CostEstimate:
    """The estimate of ``config`` on data of this shape, or :class:`ConfigError` listing every limit it breaks.

    Called before a model is built: when the job is submitted (for the named datasets, whose shapes are known) and
    in the worker once the data is loaded (for every dataset).
    """
    try:
        cost = estimate(config, input_shape, n_classes, train_images)
    except ConfigError:
        raise
    except InvalidInput as exc:  # the layers shrink the image away
        raise ConfigError([str(exc)]) from exc
    problems = check_budget(cost, limits)
    if problems:
        raise ConfigError(problems)
    return cost
