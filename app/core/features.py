"""What a unit looks for: activation maximisation (feature visualisation) for the units of a layer.

For each unit the input that maximises it, by gradient ascent from a near-grey image. What makes it work on small
inputs such as 28×28 digits (measured on ``mnist-cnn``):

- the *pre-activation* is maximised (the logit for a softmax output layer), not the ReLU output: after the ReLU a
  unit that starts below zero has no gradient at all, and most units of Conv2D_2 stayed stuck at zero;
- the image is shifted by a random 1–2 pixels at every step (jitter), and total variation and L2 penalties keep
  the pattern smooth and small, so the result is a pattern rather than high-frequency noise;
- pixels are clipped to the test set's value range after every step, and Adam (rate ≈ 0.05) takes the steps.

A map's objective is the mean of the map; a node's its value. A whole layer's units are optimised together, as
one batch (chunks of :data:`UNITS_PER_BATCH`). Units that never fire on the test set (their largest output over
every test image is exactly 0) are *dead*: they are reported as such and not optimised. The whole layer is a
background job (:mod:`app.jobs.features`); its result is stored with :func:`save_result` / :func:`load_result`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import InvalidInput

if TYPE_CHECKING:
    from app.core.activations import ActivationEngine
    from app.core.attribution import GradientModels

# Layer kinds whose units are visualised (the conv, pooling and dense layers; also any map or node layer
# the graph shows, e.g. a Flatten, would work, but only these have units worth a picture).
UNITS_PER_BATCH = 128  # 128 Conv2D_3 units of mnist-cnn at once take ~100 MB; larger layers go in chunks
MAX_STEPS = 1024
FORMAT_VERSION = 1  # bumped when the optimisation changes, so older stored results are not reused


@dataclass(frozen=True)
class Settings:
    """How the optimisation runs; every field is part of the stored result's key.

    Attributes:
        steps: Adam steps.
        learning_rate: Adam's rate, in pixel units of the value range.
        jitter: the largest random shift in pixels per step.
        tv: weight of the total-variation penalty (mean absolute difference of neighbouring pixels).
        l2: weight of the L2 penalty (mean squared distance from grey).
        seed: the random start and jitter.
    """

    steps: int = 128
    learning_rate: float = 0.05
    jitter: int = 2
    tv: float = 0.5
    l2: float = 0.2
    seed: int = 0

    def check(self) -> Settings:
        """Return the settings if every field is in range, else raise :class:`InvalidInput`."""
        problems = []
        if not 1 <= self.steps <= MAX_STEPS:
            problems.append(f"steps must be between 1 and {MAX_STEPS}")
        if not 0 < self.learning_rate <= 1:
            problems.append("the learning rate must be above 0 and at most 1")
        if not 0 <= self.jitter <= 8:
            problems.append("jitter must be between 0 and 8 pixels")
        if not (0 <= self.tv <= 100 and 0 <= self.l2 <= 100):
            problems.append("the penalties must be between 0 and 100")
        if problems:
            raise InvalidInput("; ".join(problems))
        return self

    def digest(self) -> str:
        """A short stable hash of the settings (and the algorithm's :data:`FORMAT_VERSION`)."""
        text = json.dumps({**asdict(self), "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class LayerFeatures:
    """The optimal inputs of a layer's units.

    Attributes:
        layer: the layer's name.
        images: float32 [units, H, W, C], the optimal input of each unit (grey for a dead unit).
        objective: float32 [units], each unit's objective (mean pre-activation of the map, or the node's
            pre-activation / logit) at its optimal input, without jitter; NaN for a dead unit.
        start_objective: float32 [units], the objective at the grey start.
        dead: bool [units], the unit's largest output over the test set is exactly 0.
        kernels: float32 [kh, kw, C, units], the first conv layer's kernels (None for other layers).
    """

    layer: str
    images: np.ndarray
    objective: np.ndarray
    start_objective: np.ndarray
    dead: np.ndarray
    kernels: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.images)


def unit_maxima(engine: ActivationEngine, layer_name: str) -> np.ndarray:
    """The largest output of every unit of ``layer_name`` over the whole test set: float32 [units].

    Streamed batch by batch over the engine's truncated model, so peak memory is one batch of activations.
    """
    info = engine.layer(layer_name)
    maxima = np.full(info.n_units, -np.inf, dtype=np.float32)
    for _, outputs in engine.iter_layer_batches(info.name):
        flat = outputs.reshape(-1, outputs.shape[-1])
        maxima = np.maximum(maxima, flat.max(axis=0))
    return maxima


def dead_units(engine: ActivationEngine, layer_name: str) -> np.ndarray:
    """bool [units]: units whose output is exactly 0 on every test image (a ReLU that never fires)."""
    return unit_maxima(engine, layer_name) == 0.0


def first_conv_layer(engine: ActivationEngine) -> str | None:
    """The name of the model's first convolution (its kernels are shown as they are), or None."""
    for info, layer in zip(engine.graph.layers, engine.graph.layer_objects, strict=True):
        if hasattr(layer, "convolution_op") and getattr(layer, "kernel", None) is not None:
            return info.name
    return None


def kernels_of(engine: ActivationEngine, layer_name: str) -> np.ndarray | None:
    """The kernels [kh, kw, C, units] of ``layer_name`` when it is the model's first convolution, else None."""
    info = engine.layer(layer_name)
    if info.name != first_conv_layer(engine):
        return None
    position = [candidate.name for candidate in engine.graph.layers].index(info.name)
    return np.asarray(engine.graph.layer_objects[position].kernel, dtype=np.float32)


def _optimiser(models: GradientModels, layer_name: str, settings: Settings) -> Callable:
    """A traced ``(start [B, H, W, C], units [B], shifts [steps, 2]) -> (images, objective)``: the whole ascent
    in one graph (a Python loop of single steps costs ~1 ms of overhead per step)."""
    import tensorflow as tf

    objective = models.objective(layer_name)
    low, high = np.float32(models.low), np.float32(models.high)
    grey = np.float32((models.low + models.high) / 2)
    rate, tv_weight, l2_weight = (np.float32(value) for value in (settings.learning_rate, settings.tv, settings.l2))
    beta1, beta2, epsilon = np.float32(0.9), np.float32(0.999), np.float32(1e-7)
    spec = tf.TensorSpec((None, *models.image_shape), tf.float32)

    def unit_objective(images, units):
        outputs = objective(images)
        if len(outputs.shape) == 4:
            outputs = tf.reduce_mean(outputs, axis=(1, 2))
        return tf.gather(outputs, units, axis=1, batch_dims=1)

    # An explicit while loop, not autograph: autograph parses Python source with ast, which CPython 3.11.7 does not
    # guard between threads (the trace runs in a job's thread beside the server's).
    @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, 2), tf.int32)],
                 autograph=False)
    def ascend(start, units, shifts):
        def step_once(step, images, first, second):
            with tf.GradientTape() as tape:
                tape.watch(images)
                shifted = tf.roll(images, shift=shifts[step], axis=[1, 2])
                gain = unit_objective(shifted, units)
                tv = (tf.reduce_mean(tf.abs(images[:, 1:] - images[:, :-1]), axis=[1, 2, 3])
                      + tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2, 3]))
                l2 = tf.reduce_mean(tf.square(images - grey), axis=[1, 2, 3])
                loss = tf.reduce_sum(-gain + tv_weight * tv + l2_weight * l2)
            gradient = tape.gradient(loss, images)
            count = tf.cast(step + 1, tf.float32)
            first = beta1 * first + (1 - beta1) * gradient
            second = beta2 * second + (1 - beta2) * tf.square(gradient)
            corrected = (first / (1 - beta1**count)) / (tf.sqrt(second / (1 - beta2**count)) + epsilon)
            return step + 1, tf.clip_by_value(images - rate * corrected, low, high), first, second

        steps = tf.shape(shifts)[0]
        _, images, _, _ = tf.while_loop(lambda step, *_: step < steps, step_once,
                                        [tf.constant(0), start, tf.zeros_like(start), tf.zeros_like(start)])
        return images, unit_objective(images, units)

    return ascend


def grey_start(models: GradientModels, count: int, seed: int) -> np.ndarray:
    """``count`` near-grey images: the middle of the value range plus 1 % noise (so units of one layer do not all
    start from the same point)."""
    rng = np.random.default_rng(seed)
    middle, spread = (models.low + models.high) / 2, models.high - models.low
    noise = rng.normal(0.0, 0.01 * spread, (count, *models.image_shape))
    return np.clip(middle + noise, models.low, models.high).astype(np.float32)


def objective_values(models: GradientModels, layer_name: str, images: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The objective of ``units[i]`` for ``images[i]``: float32 [B] (mean of the map's pre-activation, or the node's
    pre-activation / logit)."""
    outputs = np.asarray(models.objective(layer_name)(images.astype(np.float32)))
    if outputs.ndim == 4:
        outputs = outputs.mean(axis=(1, 2))
    return outputs[np.arange(len(units)), units].astype(np.float32)


def optimise_units(models: GradientModels, layer_name: str, units: np.ndarray, settings: Settings = DEFAULT_SETTINGS,
                   progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise each of ``units`` of ``layer_name`` from a near-grey start, :data:`UNITS_PER_BATCH` at a time, or
    fewer when that many images' gradients up to the layer would not fit the gradient memory limit.

    Args:
        units: int [B], the units (each unit gets its own image).
        progress: called with (units done, units in all) after every chunk.

    Returns:
        ``(images [B, H, W, C], objective [B], start_objective [B])``.
    """
    settings.check()
    units = np.asarray(units, dtype=np.int32)
    info = models.engine.layer(layer_name)
    if units.size and not (units.min() >= 0 and units.max() < info.n_units):
        raise InvalidInput(f"units must be between 0 and {info.n_units - 1}")
    ascend = models_cached_optimiser(models, info.name, settings)
    rng = np.random.default_rng(settings.seed)
    start = grey_start(models, len(units), settings.seed)
    images = np.empty_like(start)
    final = np.empty(len(units), dtype=np.float32)
    models.plan(1, f"the optimal input of a unit of {info.name}", info.name)  # one image must fit the memory limit
    batch = models.batch_size(UNITS_PER_BATCH, info.name)
    for begin in range(0, len(units), batch):
        chunk = slice(begin, begin + batch)
        shifts = rng.integers(-settings.jitter, settings.jitter + 1, (settings.steps, 2)).astype(np.int32)
        result, value = ascend(start[chunk], units[chunk], shifts)
        images[chunk], final[chunk] = np.asarray(result), np.asarray(value)
        if progress is not None:
            progress(min(begin + batch, len(units)), len(units))
    start_values = objective_values(models, info.name, start, units) if len(units) else final
    return images, final, start_values


def models_cached_optimiser(models: GradientModels, layer_name: str, settings: Settings) -> Callable:
    """The traced optimiser of ``layer_name`` with ``settings``, kept with the model's other gradient models."""
    return models.cached(("ascend", layer_name, settings), lambda: _optimiser(models, layer_name, settings))


def layer_features(models: GradientModels, layer_name: str, settings: Settings = DEFAULT_SETTINGS,
                   progress: Callable[[int, int], None] | None = None) -> LayerFeatures:
    """The optimal input of every live unit of ``layer_name`` (dead ones marked, not optimised), plus the kernels
    when it is the first conv layer."""
    engine = models.engine
    info = engine.layer(layer_name)
    dead = dead_units(engine, info.name)
    live = np.flatnonzero(~dead).astype(np.int32)
    images = grey_start(models, info.n_units, settings.seed)
    objective = np.full(info.n_units, np.nan, dtype=np.float32)
    start_objective = objective_values(models, info.name, images, np.arange(info.n_units))
    if live.size:
        found, value, _ = optimise_units(models, info.name, live, settings, progress)
        images[live], objective[live] = found, value
    middle = np.float32((models.low + models.high) / 2)
    images[dead] = middle
    return LayerFeatures(info.name, images, objective, start_objective, dead, kernels_of(engine, info.name))


def result_path(folder: Path, model: str, version: str, layer: str, settings: Settings) -> Path:
    """Where a layer's result is stored: one file per (model, version, layer, settings), named by their hash (layer
    names may hold ``/``; versions may be long)."""
    key = json.dumps([model, version, layer, settings.digest()])
    return Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def save_result(path: Path, features: LayerFeatures) -> None:
    """Write ``features`` to ``path`` atomically (a temporary file in the same folder, then a rename), so a reader
    never sees half a file."""
    buffer = io.BytesIO()
    arrays = {"layer": np.array(features.layer), "images": features.images, "objective": features.objective,
              "start_objective": features.start_objective, "dead": features.dead}
    if features.kernels is not None:
        arrays["kernels"] = features.kernels
    np.savez(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_result(path: Path) -> LayerFeatures | None:
    """The stored result at ``path``, or None when there is none (or it cannot be read: it is then recomputed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return LayerFeatures(
                str(data["layer"]), data["images"], data["objective"], data["start_objective"],
                data["dead"].astype(bool), data["kernels"] if "kernels" in data.files else None,
            )
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class UnitFeature:
    """One unit's optimal input.

    Attributes:
        unit: the unit's number.
        image: float32 [H, W, C] (grey for a dead unit).
        objective, start_objective: the objective at the optimal input (NaN when dead) and at the grey start.
        dead: whether the unit never fires on the test set.
    """

    unit: int
    image: np.ndarray
    objective: float
    start_objective: float
    dead: bool


def unit_feature(models: GradientModels, layer_name: str, unit: int, unit_max: float,
                 settings: Settings = DEFAULT_SETTINGS) -> UnitFeature:
    """The optimal input of one unit, computed now (≈ 0.2 s for ``mnist-cnn``), priced first: ``steps`` gradient
    passes up to the layer must fit the gradient budget (:meth:`GradientModels.plan`, OverBudget otherwise).

    Args:
        unit_max: the unit's largest output over the test set (0: dead, not optimised), e.g. from the cached top
            images by max (:meth:`~app.core.statistics.StatisticsCache.top_units`).
    """
    info = models.engine.layer(layer_name)
    if not 0 <= unit < info.n_units:
        raise InvalidInput(f"unit {unit} is out of range: layer {info.name!r} has units 0-{info.n_units - 1}")
    start = grey_start(models, 1, settings.seed)
    start_value = float(objective_values(models, info.name, start, np.array([unit]))[0])
    if unit_max == 0.0:
        middle = np.float32((models.low + models.high) / 2)
        return UnitFeature(unit, np.full(models.image_shape, middle, np.float32), float("nan"), start_value, True)
    models.plan(settings.steps, f"the optimal input of unit {unit} of {info.name} ({settings.steps} steps, one "
                "image each; the whole layer's is computed in the background)", info.name)
    images, objective, _ = optimise_units(models, info.name, np.array([unit]), settings)
    return UnitFeature(unit, images[0], float(objective[0]), start_value, False)


def unit_of(features: LayerFeatures, unit: int) -> UnitFeature:
    """Unit ``unit`` of a stored layer result (raises :class:`InvalidInput` when out of range)."""
    if not 0 <= unit < features.n_units:
        raise InvalidInput(f"unit {unit} is out of range: layer {features.layer!r} has units 0-{features.n_units - 1}")
    return UnitFeature(unit, features.images[unit], float(features.objective[unit]),
                       float(features.start_objective[unit]), bool(features.dead[unit]))
