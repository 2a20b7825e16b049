"""What a unit looks for: activation maximisation (feature visualisation) for the units of a layer.

For each unit the input that maximises it, by gradient ascent, regularised as Lucid and OpenAI Microscope do it
(Olah et al., "Feature Visualization", Distill 2017), so that the result has structure rather than saturated flat
squares or stripes (what plain ascent gave on ``mnist-cnn``):

- the image is not optimised pixel by pixel but as a *decorrelated* (Fourier) parameterisation: its spectrum,
  scaled by ``1 / frequency ** decay``, so a step moves smooth blobs rather than single pixels, and squashed into
  the test set's value range by a sigmoid (no hard clipping that saturates);
- every step sees the image under a random transform (jitter, a small rotation and scaling), so only patterns that
  raise the unit wherever they sit survive, not a pixel-exact exploit;
- the *pre-activation* is maximised (the logit for a softmax output layer), not the ReLU output: after the ReLU a
  unit that starts below zero has no gradient at all;
- a map's objective is its *centre neuron* (the pre-activation at the middle of the map), as Microscope's "neuron"
  pictures: the mean over a map of a first-layer convolution depends on the image's mean brightness alone (its
  optimum was a flat square whatever the kernel), while the centre neuron shows the pattern inside its receptive
  field; a node's objective is its value;
- small total-variation and L2 penalties keep what is left smooth and close to grey.

A whole layer's units are optimised together, as one batch (chunks of :data:`UNITS_PER_BATCH`), in segments of
:data:`SEGMENT_STEPS` traced steps, so a background job can report each step. Units that never fire on the test set
(their largest output over every test image is exactly 0) are *dead*: they are reported as such and not optimised.
The whole layer is a background job (:mod:`app.jobs.features`); its result is stored with :func:`save_result` /
:func:`load_result`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import InvalidInput
from app.core.limits import write_arrays

if TYPE_CHECKING:
    from app.core.activations import ActivationEngine
    from app.core.attribution import GradientModels

# Layer kinds whose units are visualised (the conv, pooling and dense layers; also any map or node layer
# the graph shows, e.g. a Flatten, would work, but only these have units worth a picture).
UNITS_PER_BATCH = 128  # 128 Conv2D_3 units of mnist-cnn at once take ~100 MB; larger layers go in chunks
MAX_STEPS = 1024
SEGMENT_STEPS = 16  # steps per traced call: progress after each (a call costs ~1 ms more than a traced step)
FORMAT_VERSION = 2  # bumped when the optimisation changes, so older stored results are not reused


@dataclass(frozen=True)
class Settings:
    """How the optimisation runs; every field is part of the stored result's key.

    All the regularisers at 0 (``decay``, ``jitter``, ``rotate``, ``scale``, ``tv``, ``l2``) is plain gradient
    ascent on the pixels (through the sigmoid that keeps them in range).

    Attributes:
        steps: Adam steps.
        learning_rate: Adam's rate, on the spectrum's parameters.
        decay: how fast the spectrum's scale falls with frequency (``1 / f ** decay``; 0: a flat spectrum, i.e.
            pixels).
        jitter: the largest random shift in pixels per step.
        rotate: the largest random rotation in degrees per step.
        scale: the largest random relative scaling per step (0.1: between 0.9 and 1.1).
        tv: weight of the total-variation penalty (mean absolute difference of neighbouring pixels).
        l2: weight of the L2 penalty (mean squared distance from grey).
        seed: the random start and transforms.
    """

    steps: int = 128
    learning_rate: float = 0.05
    decay: float = 1.0
    jitter: int = 2
    rotate: float = 10.0
    scale: float = 0.1
    tv: float = 0.1
    l2: float = 0.1
    seed: int = 0

    def check(self) -> Settings:
        """Return the settings if every field is in range, else raise :class:`InvalidInput`."""
        problems = []
        if not 1 <= self.steps <= MAX_STEPS:
            problems.append(f"steps must be between 1 and {MAX_STEPS}")
        if not 0 < self.learning_rate <= 1:
            problems.append("the learning rate must be above 0 and at most 1")
        if not 0 <= self.decay <= 3:
            problems.append("the spectrum's decay must be between 0 and 3")
        if not 0 <= self.jitter <= 8:
            problems.append("jitter must be between 0 and 8 pixels")
        if not 0 <= self.rotate <= 45:
            problems.append("rotation must be between 0 and 45 degrees")
        if not 0 <= self.scale <= 0.5:
            problems.append("scaling must be between 0 and 0.5")
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
# No regulariser at all: what the optimisation was before (saturated squares and stripes), for comparison.
PLAIN_SETTINGS = Settings(decay=0.0, jitter=0, rotate=0.0, scale=0.0, tv=0.0, l2=0.0)


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


def spectrum_scale(height: int, width: int, decay: float) -> np.ndarray:
    """float32 [height, width // 2 + 1]: the scale of each frequency of a real 2-D spectrum, ``1 / f ** decay``
    (``f`` in cycles per pixel, at least one cycle per image), normalised to the root-mean-square of a flat
    spectrum's ``sqrt(height * width)``: parameters of unit size then give pixels of about unit size whatever the
    decay (``irfft2d`` divides by the pixel count), so one learning rate suits every decay."""
    rows = np.fft.fftfreq(height)[:, np.newaxis]
    cols = np.fft.rfftfreq(width)[np.newaxis, :]
    scale = np.maximum(np.sqrt(rows**2 + cols**2), 1.0 / max(height, width)) ** -float(decay)
    return (scale * np.sqrt(height * width) / np.sqrt(np.mean(scale**2))).astype(np.float32)


def start_parameters(image_shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """float32 [count, C, H, W // 2 + 1, 2]: small random spectra (a near-grey image each, so the units of one
    layer do not all start from the same point)."""
    height, width, channels = image_shape
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.01, (count, channels, height, width // 2 + 1, 2)).astype(np.float32)


def parameter_images(params: np.ndarray, width: int, scale: np.ndarray, low: float, high: float) -> np.ndarray:
    """float32 [B, H, W, C]: the images ``width`` pixels wide of spectra ``params`` scaled by ``scale`` (see
    :class:`Ascent`), computed in numpy."""
    spectrum = (params[..., 0] + 1j * params[..., 1]) * scale
    spatial = np.moveaxis(np.fft.irfft2(spectrum, s=(scale.shape[0], width)), 1, -1)
    return (low + (high - low) / (1 + np.exp(-spatial))).astype(np.float32)


# The largest shift as a share of the image's smaller side: 2 px of a 28x28 digit; on a 6x6 image, where a 2 px shift
# moves a 3x3 receptive field off what it saw (the optimum then hardly rose above grey), none.
JITTER_SHARE = 1 / 12


def random_transforms(rng: np.random.Generator, steps: int, height: int, width: int,
                      settings: Settings) -> np.ndarray:
    """float32 [steps, 8]: one random projective transform per step (``ImageProjectiveTransformV3``'s layout:
    output pixel -> input pixel), a rotation by up to ``settings.rotate`` degrees and a scaling by up to
    ``settings.scale`` about the image's centre, then a shift by up to ``settings.jitter`` pixels, and at most
    :data:`JITTER_SHARE` of the image's smaller side."""
    angle = np.deg2rad(rng.uniform(-settings.rotate, settings.rotate, steps))
    zoom = rng.uniform(1 - settings.scale, 1 + settings.scale, steps)
    jitter = min(settings.jitter, int(min(height, width) * JITTER_SHARE))
    shift = rng.integers(-jitter, jitter + 1, (steps, 2)).astype(np.float64)
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    a0, a1 = np.cos(angle) / zoom, -np.sin(angle) / zoom
    b0, b1 = np.sin(angle) / zoom, np.cos(angle) / zoom
    a2 = centre_x - a0 * centre_x - a1 * centre_y + shift[:, 0]
    b2 = centre_y - b0 * centre_x - b1 * centre_y + shift[:, 1]
    zeros = np.zeros(steps)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)


class Ascent:
    """The regularised ascent of one layer with one :class:`Settings`, as traced functions.

    The image of parameters ``p`` (float32 [B, C, H, W // 2 + 1, 2], a real and an imaginary part per frequency)
    is ``low + (high - low) * sigmoid(irfft2d(p * spectrum_scale))``, channels last.
    """

    def __init__(self, models: GradientModels, layer_name: str, settings: Settings) -> None:
        import tensorflow as tf

        self.height, self.width, self.channels = models.image_shape
        self.objective = models.objective(layer_name)
        low, high = np.float32(models.low), np.float32(models.high)
        grey = np.float32((models.low + models.high) / 2)
        self.low, self.high = float(models.low), float(models.high)
        self.scale = spectrum_scale(self.height, self.width, settings.decay)
        scale = tf.constant(self.scale)
        rate, tv_weight, l2_weight = (np.float32(v) for v in (settings.learning_rate, settings.tv, settings.l2))
        beta1, beta2, epsilon = np.float32(0.9), np.float32(0.999), np.float32(1e-7)
        size = [self.height, self.width]
        params_spec = tf.TensorSpec((None, self.channels, self.height, self.width // 2 + 1, 2), tf.float32)

        def to_image(params):
            spectrum = tf.complex(params[..., 0] * scale, params[..., 1] * scale)
            spatial = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=size), [0, 2, 3, 1])
            return low + (high - low) * tf.sigmoid(spatial)

        def unit_objective(images, units):
            outputs = self.objective(images)
            if len(outputs.shape) == 4:  # the centre neuron of each map
                outputs = outputs[:, outputs.shape[1] // 2, outputs.shape[2] // 2, :]
            return tf.gather(outputs, units, axis=1, batch_dims=1)

        # An explicit while loop, not autograph: autograph parses Python source with ast, which CPython 3.11.7 does
        # not guard between threads (the trace runs in a job's thread beside the server's).
        @tf.function(input_signature=[params_spec, params_spec, params_spec, tf.TensorSpec((), tf.int32),
                                      tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, 8), tf.float32)],
                     autograph=False)
        def ascend(params, first, second, done, units, transforms):
            batch = tf.shape(params)[0]

            def step_once(step, params, first, second):
                with tf.GradientTape() as tape:
                    tape.watch(params)
                    images = to_image(params)
                    moved = tf.raw_ops.ImageProjectiveTransformV3(
                        images=images, transforms=tf.tile(transforms[step][tf.newaxis], [batch, 1]),
                        output_shape=size, fill_value=grey, interpolation="BILINEAR", fill_mode="REFLECT")
                    gain = unit_objective(moved, units)
                    tv = (tf.reduce_mean(tf.abs(images[:, 1:] - images[:, :-1]), axis=[1, 2, 3])
                          + tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2, 3]))
                    l2 = tf.reduce_mean(tf.square(images - grey), axis=[1, 2, 3])
                    loss = tf.reduce_sum(-gain + tv_weight * tv + l2_weight * l2)
                gradient = tape.gradient(loss, params)
                count = tf.cast(done + step + 1, tf.float32)
                first = beta1 * first + (1 - beta1) * gradient
                second = beta2 * second + (1 - beta2) * tf.square(gradient)
                corrected = (first / (1 - beta1**count)) / (tf.sqrt(second / (1 - beta2**count)) + epsilon)
                return step + 1, params - rate * corrected, first, second

            steps = tf.shape(transforms)[0]
            _, params, first, second = tf.while_loop(lambda step, *_: step < steps, step_once,
                                                     [tf.constant(0), params, first, second])
            return params, first, second

        self.ascend = ascend

    def images(self, params: np.ndarray) -> np.ndarray:
        """float32 [B, H, W, C]: the images of ``params``."""
        return parameter_images(params, self.width, self.scale, self.low, self.high)


def grey_start(models: GradientModels, count: int, settings: Settings = DEFAULT_SETTINGS) -> np.ndarray:
    """The ``count`` near-grey images the optimisation starts from (:func:`start_parameters` of the seed)."""
    height, width, _ = models.image_shape
    params = start_parameters(models.image_shape, count, settings.seed)
    return parameter_images(params, width, spectrum_scale(height, width, settings.decay), models.low, models.high)


def objective_values(models: GradientModels, layer_name: str, images: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The objective of ``units[i]`` for ``images[i]``: float32 [B] (the pre-activation of the map's centre neuron,
    or the node's pre-activation / logit)."""
    outputs = np.asarray(models.objective(layer_name)(images.astype(np.float32)))
    if outputs.ndim == 4:
        outputs = outputs[:, outputs.shape[1] // 2, outputs.shape[2] // 2, :]
    return outputs[np.arange(len(units)), units].astype(np.float32)


ProgressReport = Callable[[int, int, str], None]


def optimise_units(models: GradientModels, layer_name: str, units: np.ndarray, settings: Settings = DEFAULT_SETTINGS,
                   progress: ProgressReport | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise each of ``units`` of ``layer_name`` from a near-grey start, :data:`UNITS_PER_BATCH` at a time, or
    fewer when that many images' gradients up to the layer would not fit the gradient memory limit.

    Deterministic for one ``settings.seed``: the start and every step's random transform come from it.

    Args:
        units: int [B], the units (each unit gets its own image).
        progress: called with (steps done, steps in all, what is under way in words) after every
            :data:`SEGMENT_STEPS` steps; a layer in several chunks counts the steps of every chunk.

    Returns:
        ``(images [B, H, W, C], objective [B], start_objective [B])``, the objective without any transform.
    """
    settings.check()
    units = np.asarray(units, dtype=np.int32)
    info = models.engine.layer(layer_name)
    if units.size and not (units.min() >= 0 and units.max() < info.n_units):
        raise InvalidInput(f"units must be between 0 and {info.n_units - 1}")
    ascent = models_cached_optimiser(models, info.name, settings)
    rng = np.random.default_rng(settings.seed)
    params = start_parameters(models.image_shape, len(units), settings.seed)
    start = ascent.images(params) if len(units) else np.empty((0, *models.image_shape), np.float32)
    models.plan(1, f"the optimal input of a unit of {info.name}", info.name)  # one image must fit the memory limit
    batch = models.batch_size(UNITS_PER_BATCH, info.name)
    chunks = -(-len(units) // batch)
    total = chunks * settings.steps
    for number, begin in enumerate(range(0, len(units), batch)):
        chunk = slice(begin, begin + batch)
        transforms = random_transforms(rng, settings.steps, ascent.height, ascent.width, settings)
        found, first, second = params[chunk], np.zeros_like(params[chunk]), np.zeros_like(params[chunk])
        for done in range(0, settings.steps, SEGMENT_STEPS):
            found, first, second = ascent.ascend(found, first, second, np.int32(done), units[chunk],
                                                 transforms[done:done + SEGMENT_STEPS])
            if progress is not None:
                count = len(units[chunk])
                what = (f"{count} units at once" if chunks == 1
                        else f"units {begin + 1}-{begin + count} of {len(units)}, {count} at once")
                progress(number * settings.steps + min(done + SEGMENT_STEPS, settings.steps), total, what)
        params[chunk] = np.asarray(found)
    images = ascent.images(params) if len(units) else start
    final = objective_values(models, info.name, images, units) if len(units) else np.empty(0, np.float32)
    start_values = objective_values(models, info.name, start, units) if len(units) else final
    return images, final, start_values


def models_cached_optimiser(models: GradientModels, layer_name: str, settings: Settings) -> Ascent:
    """The traced ascent of ``layer_name`` with ``settings``, kept with the model's other gradient models."""
    return models.cached(("ascent", layer_name, settings), lambda: Ascent(models, layer_name, settings))


def layer_features(models: GradientModels, layer_name: str, settings: Settings = DEFAULT_SETTINGS,
                   progress: ProgressReport | None = None) -> LayerFeatures:
    """The optimal input of every live unit of ``layer_name`` (dead ones marked, not optimised), plus the kernels
    when it is the first conv layer."""
    engine = models.engine
    info = engine.layer(layer_name)
    dead = dead_units(engine, info.name)
    live = np.flatnonzero(~dead).astype(np.int32)
    images = grey_start(models, info.n_units, settings)
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
    """Write ``features`` to ``path`` atomically (see :func:`app.core.limits.write_arrays`), so a reader never sees
    half a file."""
    arrays = {"layer": np.array(features.layer), "images": features.images, "objective": features.objective,
              "start_objective": features.start_objective, "dead": features.dead}
    if features.kernels is not None:
        arrays["kernels"] = features.kernels
    write_arrays(path, arrays)


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
    start = grey_start(models, 1, settings)
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
