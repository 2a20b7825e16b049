"""Statistics over a model's frozen test set: confusion matrix, image finder, class means, top images, MLP view.

Everything here is plain numpy over the activation engine (no Dash): the pages, the API and the benchmarks call
the same functions. Whole-test-set work streams through :meth:`ActivationEngine.iter_layer_batches`, keeping only
running sums or a running top k, so peak memory is one batch of activations whatever the test set's size.
Results are cached in bounded LRU caches keyed by (model name, model version, layer, ...): a new model version
never sees an old result, and no cache grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.activations import DEFAULT_BATCH_SIZE, LayerNotFound
from app.core.cache import LRUCache

if TYPE_CHECKING:
    from app.core.activations import ActivationEngine, LayerInfo
    from app.core.store import LoadedModel

MAX_TOP_K = 64
# Images per forward pass for whole-test-set statistics (see DEFAULT_BATCH_SIZE for the memory measurements).
STATS_BATCH_SIZE = DEFAULT_BATCH_SIZE
SORT_ORDERS = ("confidence-asc", "confidence-desc", "index")
CORRECTNESS = ("all", "correct", "wrong")
RANK_BY = ("mean", "max")
# Layers that are the identity at inference time: a node's contribution passes through them unchanged.
IDENTITY_AT_INFERENCE = frozenset(
    {"Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Identity",
     "SpatialDropout1D"}
)


class StatsError(ValueError):
    """A statistics request that cannot be answered (bad class, unit, k, or layer type); HTTP 400 in the API."""

    status = 400


# ---------------------------------------------------------------------------------------------------------------
# Confusion matrix and the image finder


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        labels: true classes [N].
        predicted: predicted classes [N].
        n_classes: size of both axes.

    Returns:
        int64 [n_classes, n_classes]; row = true class, column = predicted class.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    valid = (labels >= 0) & (labels < n_classes) & (predicted >= 0) & (predicted < n_classes)
    flat = labels[valid] * n_classes + predicted[valid]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def model_confusion(loaded: LoadedModel) -> np.ndarray:
    """The confusion matrix of ``loaded`` on its test set (predictions computed once per model version)."""
    predictions = loaded.engine.predictions()
    return confusion_matrix(loaded.labels, predictions.argmax(axis=1), predictions.shape[1])


@dataclass(frozen=True)
class ImageQuery:
    """What the image finder filters by; ``None`` means "any".

    Attributes:
        true_class, predicted_class: class numbers.
        correctness: ``all``, ``correct`` (predicted == true) or ``wrong``.
        min_confidence, max_confidence: bounds (inclusive) on the probability of the predicted class.
        sort: ``confidence-asc`` (least sure first), ``confidence-desc`` or ``index``.
    """

    true_class: int | None = None
    predicted_class: int | None = None
    correctness: str = "all"
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    sort: str = "confidence-asc"

    def validate(self, n_classes: int) -> ImageQuery:
        """Return self if every field is usable for a model with ``n_classes`` classes, else raise StatsError."""
        for name, value in (("true class", self.true_class), ("predicted class", self.predicted_class)):
            if value is not None and not 0 <= value < n_classes:
                raise StatsError(f"{name} {value} is out of range: the model has classes 0-{n_classes - 1}")
        if self.correctness not in CORRECTNESS:
            raise StatsError(f"correctness must be one of {', '.join(CORRECTNESS)}, got {self.correctness!r}")
        if self.sort not in SORT_ORDERS:
            raise StatsError(f"sort must be one of {', '.join(SORT_ORDERS)}, got {self.sort!r}")
        if not 0 <= self.min_confidence <= self.max_confidence <= 1:
            raise StatsError(
                f"confidence range must satisfy 0 <= min <= max <= 1, got {self.min_confidence}-{self.max_confidence}"
            )
        return self


def find_images(labels: np.ndarray, probabilities: np.ndarray, query: ImageQuery) -> np.ndarray:
    """Indices of the test images that match ``query``, in its sort order.

    Args:
        labels: true classes [N].
        probabilities: class probabilities [N, classes].
        query: the filters (validated here).

    Returns:
        int64 indices; ties in confidence keep index order (stable sort).
    """
    probabilities = np.asarray(probabilities)
    query.validate(probabilities.shape[1])
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    keep = (confidence >= query.min_confidence) & (confidence <= query.max_confidence)
    if query.true_class is not None:
        keep &= labels == query.true_class
    if query.predicted_class is not None:
        keep &= predicted == query.predicted_class
    if query.correctness != "all":
        keep &= (predicted == labels) == (query.correctness == "correct")
    indices = np.flatnonzero(keep)
    if query.sort == "index":
        return indices
    order = np.argsort(confidence[indices] * (1 if query.sort == "confidence-asc" else -1), kind="stable")
    return indices[order]


def model_find_images(loaded: LoadedModel, query: ImageQuery) -> np.ndarray:
    """:func:`find_images` over ``loaded``'s test set and predictions."""
    return find_images(loaded.labels, loaded.engine.predictions(), query)


def parse_indices(raw: str | None, n_images: int, limit: int) -> tuple[list[int], list[str]]:
    """Image numbers from text such as ``"12, 7 300"``: valid, unique, in order, at most ``limit``.

    Returns:
        ``(indices, problems)``: the usable numbers and one sentence per ignored token, for the user to see.
    """
    indices: list[int] = []
    problems: list[str] = []
    for token in (raw or "").replace(",", " ").split():
        try:
            index = int(token)
        except ValueError:
            problems.append(f"{token!r} is not an image number")
            continue
        if not 0 <= index < n_images:
            problems.append(f"image {index} is out of range 0-{n_images - 1}")
        elif index in indices:
            continue
        elif len(indices) >= limit:
            problems.append(f"at most {limit} images: {index} and later ones are left out")
            break
        else:
            indices.append(index)
    return indices, problems


# ---------------------------------------------------------------------------------------------------------------
# Class means and class differences


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
    engine: ActivationEngine, layer_name: str, n_classes: int, batch_size: int = STATS_BATCH_SIZE
) -> ClassMeans:
    """Mean output of ``layer_name`` per true class, streamed over the test set with running sums (no caching).

    Each batch adds ``one_hot(labels).T @ outputs`` to a float64 [classes, units] sum, so memory is one batch of
    activations plus the sums, and there is no Python loop over images or classes.

    Args:
        engine: the activation engine of the model version.
        layer_name: a visualisable layer.
        n_classes: number of classes (labels outside 0..n_classes-1 are ignored).
        batch_size: images per forward pass.
    """
    info = engine.layer(layer_name)
    labels = engine.loaded.labels
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


class ClassStatistics:
    """Bounded caches of whole-test-set statistics, keyed by model version and layer.

    Args:
        maxsize: entries per cache (each entry is at most classes x layer size floats, or k x units).
    """

    def __init__(self, maxsize: int = 32) -> None:
        self._means: LRUCache[ClassMeans] = LRUCache(maxsize)
        self._top: LRUCache[TopUnits] = LRUCache(maxsize)

    def class_means(self, loaded: LoadedModel, layer_name: str) -> ClassMeans:
        """Per-class mean output of ``layer_name`` for ``loaded`` (computed once per model version and layer)."""
        info = loaded.engine.layer(layer_name)
        return self._means.get_or_compute(
            (*loaded.key, info.name),
            lambda: compute_class_means(loaded.engine, info.name, len(loaded.class_names)),
        )

    def top_units(self, loaded: LoadedModel, layer_name: str, by: str = "mean") -> TopUnits:
        """The top :data:`MAX_TOP_K` images of every unit of ``layer_name`` (one pass, cached per version)."""
        info = loaded.engine.layer(layer_name)
        check_rank_by(by)
        return self._top.get_or_compute(
            (*loaded.key, info.name, by), lambda: compute_top_units(loaded.engine, info.name, MAX_TOP_K, by)
        )

    def clear(self) -> None:
        """Drop every cached result."""
        self._means.clear()
        self._top.clear()


# The process-wide caches the pages and the API share (bounded and keyed by version: not per-user state).
STATISTICS = ClassStatistics()


def check_class(loaded: LoadedModel, label: int) -> int:
    """Return ``label`` if it is a class of ``loaded``, else raise :class:`StatsError`."""
    n_classes = len(loaded.class_names)
    if not 0 <= label < n_classes:
        raise StatsError(f"class {label} is out of range: the model has classes 0-{n_classes - 1}")
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
            raise StatsError(f"class {label} is out of range: the model has classes 0-{n_classes - 1}")
        if means.counts[label] == 0:
            raise StatsError(f"class {label} has no images in the test set")
    difference = means.means[class_a] - means.means[class_b]
    axes = tuple(range(difference.ndim - 1))  # all but the unit axis: (0, 1) for maps, () for nodes
    scores = np.abs(difference).mean(axis=axes) if axes else np.abs(difference)
    signed = difference.mean(axis=axes) if axes else difference
    ranking = np.argsort(-scores, kind="stable")
    return ClassDifference(class_a, class_b, difference, scores, signed, ranking)


# ---------------------------------------------------------------------------------------------------------------
# Top images per unit


def check_rank_by(by: str) -> str:
    """Return ``by`` if it is ``mean`` or ``max``, else raise :class:`StatsError`."""
    if by not in RANK_BY:
        raise StatsError(f"'by' must be one of {', '.join(RANK_BY)}, got {by!r}")
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
    """

    layer: str
    indices: np.ndarray
    values: np.ndarray
    by: str

    @property
    def n_units(self) -> int:
        """Number of units."""
        return self.indices.shape[1]

    def unit(self, unit: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, values)`` of the top ``k`` images of ``unit``; raises :class:`StatsError` if out of range."""
        if not 0 <= unit < self.n_units:
            raise StatsError(f"unit {unit} is out of range: layer {self.layer!r} has units 0-{self.n_units - 1}")
        if not 1 <= k <= len(self.indices):
            raise StatsError(f"k must be between 1 and {len(self.indices)}, got {k}")
        return self.indices[:k, unit], self.values[:k, unit]


def compute_top_units(
    engine: ActivationEngine, layer_name: str, k: int, by: str = "mean", batch_size: int = STATS_BATCH_SIZE
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
    for batch, outputs in engine.iter_layer_batches(info.name, batch_size=batch_size):
        scores = unit_scores(outputs, by).astype(np.float32)
        values = np.concatenate([values, scores])
        indices = np.concatenate([indices, np.broadcast_to(batch[:, np.newaxis], scores.shape)])
        order = np.argsort(-values, axis=0, kind="stable")[:k]
        values = np.take_along_axis(values, order, axis=0)
        indices = np.take_along_axis(indices, order, axis=0)
    return TopUnits(info.name, indices, values, by)


def top_images(loaded: LoadedModel, layer_name: str, unit: int, k: int = 9, by: str = "mean"):
    """The ``k`` test images that activate ``unit`` of ``layer_name`` most: ``(indices, values)``, best first.

    Raises:
        LayerNotFound; StatsError for a bad unit, ``k`` or ``by``.
    """
    if not 1 <= k <= MAX_TOP_K:
        raise StatsError(f"k must be between 1 and {MAX_TOP_K}, got {k}")
    return STATISTICS.top_units(loaded, layer_name, by).unit(unit, k)


# ---------------------------------------------------------------------------------------------------------------
# MLP contributions


@dataclass(frozen=True)
class Contributions:
    """How each node of a layer pushes the next Dense layer's pre-activation ("logit") of two classes.

    ``contributions[j].sum() + bias[j] == logits[j]`` for j in (0, 1).

    Attributes:
        layer, target: the chosen layer and the Dense layer it feeds.
        classes: the two target units (classes when the target is the output layer).
        activations: the chosen layer's output for the image [N].
        contributions: float32 [2, N], activation x weight to each class.
        bias: the target's biases of the two classes (0 without bias).
        logits: the two pre-activations.
        all_logits: every pre-activation of the target layer (softmax of these = the output, for softmax).
    """

    layer: str
    target: str
    image: int
    classes: tuple[int, int]
    activations: np.ndarray
    contributions: np.ndarray
    bias: np.ndarray
    logits: np.ndarray
    all_logits: np.ndarray

    @property
    def difference(self) -> np.ndarray:
        """Contributions to class A minus class B [N]: which nodes separate the two."""
        return self.contributions[0] - self.contributions[1]


def next_dense_layer(model, layer_name: str):
    """The Dense layer fed by ``layer_name`` through identity-at-inference layers (Dropout, ...) only.

    Raises:
        LayerNotFound: no such layer.
        StatsError: the layer is not followed by a Dense layer, or something in between is not the identity at
            inference (then activation x weight would not add up to the logit).
    """
    import keras

    # A Sequential model is a chain by construction (and a loaded one calls its layers twice, so its tensors are
    # not shared between neighbours); a functional model's graph is checked tensor by tensor.
    linear = isinstance(model, keras.Sequential)
    layers = model.layers
    position = next((i for i, layer in enumerate(layers) if layer.name == layer_name), None)
    if position is None:
        raise LayerNotFound(f"model has no layer {layer_name!r}")
    chosen = layers[position]
    tensor = chosen.output
    if len(tensor.shape) != 2:
        raise StatsError(f"layer {layer_name!r} outputs {tuple(tensor.shape[1:])}: contributions need a vector layer")
    for layer in layers[position + 1 :]:
        kind = type(layer).__name__
        # The next layer must consume exactly this tensor (checked on the graph, so a branching model is caught).
        if not linear and not _consumes(layer, tensor):
            raise StatsError(f"layer {layer.name!r} after {layer_name!r} does not take its output directly")
        if kind == "Dense":
            return layer
        if kind not in IDENTITY_AT_INFERENCE:
            raise StatsError(
                f"layer {layer_name!r} is followed by {layer.name!r} ({kind}), which is not the identity at inference: "
                "contributions are only defined up to the next Dense layer through Dropout-like layers"
            )
        tensor = layer.output
    raise StatsError(f"layer {layer_name!r} is not followed by a Dense layer")


def _consumes(layer, tensor) -> bool:
    """True if ``layer`` was called on exactly ``tensor`` in a functional graph."""
    try:
        return layer.input is tensor
    except (AttributeError, ValueError):  # a layer called several times has no single input
        return False


def contributions(loaded: LoadedModel, layer_name: str, image: int, classes: tuple[int, int]) -> Contributions:
    """Node activation x weight to the two classes' logits of the next Dense layer, for one test image.

    Args:
        loaded: the model version.
        layer_name: a vector layer (e.g. the first Dense layer) followed by a Dense layer.
        image: test-image index.
        classes: two target units of the next Dense layer (classes when it is the output layer).

    Raises:
        LayerNotFound, ImageOutOfRange, StatsError.
    """
    engine = loaded.engine
    info: LayerInfo = engine.layer(layer_name)
    engine.check_image(image)
    target = next_dense_layer(loaded.model, info.name)
    weights = target.get_weights()
    kernel = np.asarray(weights[0], dtype=np.float64)
    bias = np.asarray(weights[1], dtype=np.float64) if target.use_bias else np.zeros(kernel.shape[1])
    n_targets = kernel.shape[1]
    if len(classes) != 2:
        raise StatsError(f"give exactly two classes, got {len(classes)}")
    for label in classes:
        if not 0 <= label < n_targets:
            raise StatsError(f"class {label} is out of range: {target.name!r} has units 0-{n_targets - 1}")
    activations = engine.activations(info.name, image).astype(np.float64)
    if activations.shape != (kernel.shape[0],):
        raise StatsError(
            f"layer {info.name!r} has {activations.size} nodes but {target.name!r} expects {kernel.shape[0]}"
        )
    chosen = np.asarray(classes)
    parts = activations[np.newaxis, :] * kernel[:, chosen].T  # [2, N]
    all_logits = activations @ kernel + bias
    return Contributions(
        layer=info.name,
        target=target.name,
        image=image,
        classes=(int(classes[0]), int(classes[1])),
        activations=activations.astype(np.float32),
        contributions=parts.astype(np.float32),
        bias=bias[chosen],
        logits=parts.sum(axis=1) + bias[chosen],
        all_logits=all_logits,
    )


def contribution_layers(loaded: LoadedModel) -> list[str]:
    """Names of the layers the MLP view accepts (a vector layer feeding a Dense layer)."""
    names = []
    for info in loaded.engine.layers:
        if info.is_map:
            continue
        try:
            next_dense_layer(loaded.model, info.name)
        except (StatsError, LayerNotFound, AttributeError, ValueError):
            continue
        names.append(info.name)
    return names
