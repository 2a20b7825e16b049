"""Class statistics: the mean output of a layer per true class over the whole test set, and what separates two classes.

Whole-test-set work streams through :meth:`ActivationEngine.iter_layer_batches` keeping only running sums, so peak
memory is one batch of activations whatever the test set's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.activations import DEFAULT_BATCH_SIZE
from app.core.errors import InvalidInput

if TYPE_CHECKING:
    from app.core.activations import ActivationEngine
    from app.core.store import LoadedModel


@dataclass(frozen=True)
class ClassMeans:
    """Mean activation of one layer per true class over the whole test set.

    Attributes:
        layer: layer name.
        means: float32 [classes, *layer output shape]; NaN for a class without test images.
        counts: test images per class [classes].
    """

    layer: str
    means: np.ndarray
    counts: np.ndarray


def compute_class_means(
    engine: ActivationEngine, labels: np.ndarray, layer_name: str, n_classes: int, batch_size: int = DEFAULT_BATCH_SIZE
) -> ClassMeans:
    """Mean output of ``layer_name`` per true class, streamed over the test set with running sums (no caching).

    Each batch adds ``one_hot(labels).T @ outputs`` to a float64 [classes, units] sum, so memory is one batch of
    activations plus the sums, and there is no Python loop over images or classes.

    Args:
        engine: the activation engine of the model version.
        labels: the true class of every test image [N].
        layer_name: a visualisable layer.
        n_classes: number of classes (labels outside 0..n_classes-1 are ignored).
        batch_size: images per forward pass.
    """
    info = engine.layer(layer_name)
    size = int(np.prod(info.output_shape))
    sums = np.zeros((n_classes, size), dtype=np.float64)
    classes = np.arange(n_classes)
    for batch, outputs in engine.iter_layer_batches(info.name, batch_size=batch_size):
        one_hot = (labels[batch][:, np.newaxis] == classes).astype(np.float32)
        # float32 product within a batch (<= batch_size terms), float64 across batches: accurate and fast.
        sums += one_hot.T @ outputs.reshape(len(batch), size)
    counts = np.bincount(labels[(labels >= 0) & (labels < n_classes)], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts[:, np.newaxis]).astype(np.float32)
    return ClassMeans(info.name, means.reshape(n_classes, *info.output_shape), counts)


def compute_class_distances(engine: ActivationEngine, means: ClassMeans,
                            batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """How far each test image's output of ``means.layer`` lies from each class's mean output: the layer's own
    view of likeness ("the 4s whose activations lie nearest the mean 9"), beside the model's P(class).

    The Euclidean distance over all the layer's values, streamed over the test set as
    ``|a|² − 2 a·m + |m|²`` per batch: one matrix product per batch, no loop over images or classes.

    Returns:
        float32 [N, classes]; NaN for a class without test images.
    """
    info = engine.layer(means.layer)
    centres = means.means.reshape(len(means.means), -1).astype(np.float64)
    known = np.isfinite(centres).all(axis=1)
    centres = np.where(known[:, np.newaxis], centres, 0.0)
    centre_norms = (centres ** 2).sum(axis=1)
    distances = np.empty((engine.n_images, len(centres)), dtype=np.float32)
    for batch, outputs in engine.iter_layer_batches(info.name, batch_size=batch_size):
        flat = outputs.reshape(len(batch), -1).astype(np.float64)
        squared = (flat ** 2).sum(axis=1)[:, np.newaxis] - 2 * flat @ centres.T + centre_norms
        distances[batch] = np.sqrt(np.maximum(squared, 0.0))  # rounding can dip a zero distance below 0
    distances[:, ~known] = np.nan
    return distances


def check_class(loaded: LoadedModel, label: int) -> int:
    """Return ``label`` if it is a class of ``loaded``, else raise :class:`InvalidInput`."""
    n_classes = len(loaded.class_names)
    if not 0 <= label < n_classes:
        raise InvalidInput(f"class {label} is out of range: the model has classes 0-{n_classes - 1}")
    return label


@dataclass(frozen=True)
class ClassDifference:
    """Mean of class A minus mean of class B at one layer, with the units ranked by how much they differ.

    Attributes:
        difference: float32 [*layer output shape], mean A - mean B.
        scores: per unit, mean |difference| over the map (just |difference| for a node).
        signed: per unit, mean difference (positive: the unit is stronger for class A).
        ranking: unit numbers, largest score first.
    """

    class_a: int
    class_b: int
    difference: np.ndarray
    scores: np.ndarray
    signed: np.ndarray
    ranking: np.ndarray


def class_difference(means: ClassMeans, class_a: int, class_b: int) -> ClassDifference:
    """Difference of two class means with the units ranked by mean absolute difference (ties: lower unit first)."""
    n_classes = len(means.counts)
    for label in (class_a, class_b):
        if not 0 <= label < n_classes:
            raise InvalidInput(f"class {label} is out of range: the model has classes 0-{n_classes - 1}")
        if means.counts[label] == 0:
            raise InvalidInput(f"class {label} has no images in the test set")
    difference = means.means[class_a] - means.means[class_b]
    axes = tuple(range(difference.ndim - 1))  # all but the unit axis: (0, 1) for maps, () for nodes
    scores = np.abs(difference).mean(axis=axes) if axes else np.abs(difference)
    signed = difference.mean(axis=axes) if axes else difference
    ranking = np.argsort(-scores, kind="stable")
    return ClassDifference(class_a, class_b, difference, scores, signed, ranking)


