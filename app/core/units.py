"""Top images per unit: the test images that activate each map or node most, by mean or max over the map.

One streamed pass over the test set keeps a running top k for every unit of a layer at once, and each unit's peak
(its largest absolute value anywhere on any test image): a unit whose peak is 0 never fires, and its "top images"
would be any images with value 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.activations import DEFAULT_BATCH_SIZE
from app.core.errors import InvalidInput

if TYPE_CHECKING:
    from app.core.activations import ActivationEngine

MAX_TOP_K = 64
RANK_BY = ("mean", "max")


def check_rank_by(by: str) -> str:
    """Return ``by`` if it is ``mean`` or ``max``, else raise :class:`InvalidInput`."""
    if by not in RANK_BY:
        raise InvalidInput(f"'by' must be one of {', '.join(RANK_BY)}, got {by!r}")
    return by


def unit_scores(outputs: np.ndarray, by: str = "mean") -> np.ndarray:
    """One number per (image, unit): mean or max over each map, the value itself for nodes.

    Args:
        outputs: [B, H, W, C] or [B, N].

    Returns:
        [B, C] or [B, N].
    """
    check_rank_by(by)
    if outputs.ndim == 2:
        return outputs
    flat = outputs.reshape(len(outputs), -1, outputs.shape[-1])
    return flat.mean(axis=1) if by == "mean" else flat.max(axis=1)


@dataclass(frozen=True)
class TopUnits:
    """The ``k`` test images that activate each unit most, best first.

    Attributes:
        indices: int64 [k, units], image numbers; ties keep the lower image number first.
        values: float32 [k, units], the units' scores for those images.
        by: ``mean`` or ``max`` over the map.
        peaks: float32 [units], the largest absolute value of each unit at any position of any test image.
        positions: int64 [k, units], where in the map each of those images has the unit's largest value (the
            flat index ``row * map width + column``; 0 for nodes): the centre of the part of the image shown
            cropped to the unit's receptive field.
    """

    layer: str
    indices: np.ndarray
    values: np.ndarray
    by: str
    peaks: np.ndarray
    positions: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        """Number of units."""
        return self.indices.shape[1]

    def unit(self, unit: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, values)`` of the top ``k`` images of ``unit``; raises :class:`InvalidInput` if out of range."""
        if not 0 <= unit < self.n_units:
            raise InvalidInput(f"unit {unit} is out of range: layer {self.layer!r} has units 0-{self.n_units - 1}")
        if not 1 <= k <= len(self.indices):
            raise InvalidInput(f"k must be between 1 and {len(self.indices)}, got {k}")
        return self.indices[:k, unit], self.values[:k, unit]

    def is_dead(self, unit: int) -> bool:
        """Whether ``unit`` is 0 everywhere on every test image (a ReLU unit that never fires); raises
        :class:`InvalidInput` if out of range."""
        if not 0 <= unit < self.n_units:
            raise InvalidInput(f"unit {unit} is out of range: layer {self.layer!r} has units 0-{self.n_units - 1}")
        return bool(self.peaks[unit] == 0)


def compute_top_units(
    engine: ActivationEngine, layer_name: str, k: int, by: str = "mean", batch_size: int = DEFAULT_BATCH_SIZE
) -> TopUnits:
    """The top ``k`` images of every unit of ``layer_name``, streamed over the test set keeping only a running top k.

    Per batch, the running [k, units] top and the batch's [B, units] scores are stacked and sorted per unit; the
    sort is stable and the running rows come first (they hold lower image numbers), so ties keep the lowest image
    numbers and the result is exactly "largest value first, then lowest index".
    """
    check_rank_by(by)
    info = engine.layer(layer_name)
    k = min(k, engine.n_images)
    values = np.empty((0, info.n_units), dtype=np.float32)
    indices = np.empty((0, info.n_units), dtype=np.int64)
    positions = np.empty((0, info.n_units), dtype=np.int64)
    peaks = np.zeros(info.n_units, dtype=np.float32)
    for batch, outputs in engine.iter_layer_batches(info.name, batch_size=batch_size):
        peaks = np.maximum(peaks, np.abs(outputs).reshape(-1, info.n_units).max(axis=0))
        scores = unit_scores(outputs, by).astype(np.float32)
        values = np.concatenate([values, scores])
        indices = np.concatenate([indices, np.broadcast_to(batch[:, np.newaxis], scores.shape)])
        at = outputs.reshape(len(outputs), -1, info.n_units).argmax(axis=1) if outputs.ndim == 4 else 0 * scores
        positions = np.concatenate([positions, at.astype(np.int64)])
        order = np.argsort(-values, axis=0, kind="stable")[:k]
        values = np.take_along_axis(values, order, axis=0)
        indices = np.take_along_axis(indices, order, axis=0)
        positions = np.take_along_axis(positions, order, axis=0)
    return TopUnits(info.name, indices, values, by, peaks, positions)




# A layer's fixed colour scale: the 1st to 99th percentile of its outputs over (at most) this many test images,
# spread evenly over the test set, and at most this many of their values.
RANGE_IMAGES = 200
RANGE_VALUES = 4_000_000
RANGE_PERCENTILES = (1.0, 99.0)


def compute_layer_range(engine: ActivationEngine, layer_name: str, images: int = RANGE_IMAGES,
                        max_values: int = RANGE_VALUES) -> tuple[float, float]:
    """The colour scale that shows a layer the same way on every image: the 1st to 99th percentile of its
    outputs, estimated from ``images`` test images spread evenly over the test set (every value of them, or an
    even sample of ``max_values``). The percentiles, not the extremes: one outlier would wash out the rest."""
    info = engine.layer(layer_name)
    sample = np.unique(np.linspace(0, engine.n_images - 1, min(images, engine.n_images)).round().astype(np.int64))
    per_image = max(1, max_values // len(sample))
    chunks = []
    for _, outputs in engine.iter_layer_batches(info.name, sample):
        flat = outputs.reshape(len(outputs), -1)
        step = max(1, flat.shape[1] // per_image)
        chunks.append(flat[:, ::step].ravel())
    values = np.concatenate(chunks)
    values = values[np.isfinite(values)]
    if not values.size:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(values, RANGE_PERCENTILES))
    return (low, high) if high > low else (low, low + 1e-6)
