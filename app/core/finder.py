"""The image finder: the confusion matrix and the test images that match filters, in a chosen order.

Plain numpy over a model's test-set predictions (computed once per model version by the engine); the finder page,
the compare page's image list and the API call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.errors import InvalidInput
from app.core.parsing import parse_int
from app.core.user_images import PREFIX, is_user_image

if TYPE_CHECKING:
    from app.core.statistics import StatisticsCache
    from app.core.store import LoadedModel

SORT_ORDERS = ("confidence-asc", "confidence-desc", "index", "probability-desc", "probability-asc", "likeness")
CORRECTNESS = ("all", "correct", "wrong")


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


def model_predictions(loaded: LoadedModel, statistics: StatisticsCache | None = None) -> np.ndarray:
    """Class probabilities of ``loaded``'s whole test set: from ``statistics`` (shared by every worker, a
    background job for a large test set) when given, else from the engine."""
    return statistics.predictions(loaded) if statistics is not None else loaded.engine.predictions()


def model_confusion(loaded: LoadedModel, statistics: StatisticsCache | None = None) -> np.ndarray:
    """The confusion matrix of ``loaded`` on its test set (predictions computed once per model version)."""
    predictions = model_predictions(loaded, statistics)
    return confusion_matrix(loaded.labels, predictions.argmax(axis=1), predictions.shape[1])


@dataclass(frozen=True)
class ImageQuery:
    """What the image finder filters by; ``None`` means "any".

    Attributes:
        true_class, predicted_class: class numbers.
        correctness: ``all``, ``correct`` (predicted == true) or ``wrong``.
        min_confidence, max_confidence: bounds (inclusive) on the probability of the predicted class.
        sort: ``confidence-asc`` (least sure first), ``confidence-desc``, ``index``, or ``probability-desc`` /
            ``probability-asc``: by the probability of ``probability_class`` (e.g. the 4s that look most like 9s,
            even when none is predicted 9), or ``likeness``: nearest first to the mean output of
            ``probability_class`` at ``likeness_layer`` (the layer's own view of "looks like a 9").
        probability_class: the class whose probability ``min_probability`` and the probability sorts refer to, and
            whose mean the likeness sort measures from.
        min_probability: lower bound (inclusive) on that class's probability.
        likeness_layer: the layer whose outputs the likeness sort compares (None: unused).
    """

    true_class: int | None = None
    predicted_class: int | None = None
    correctness: str = "all"
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    sort: str = "confidence-asc"
    probability_class: int | None = None
    min_probability: float = 0.0
    likeness_layer: str | None = None

    def validate(self, n_classes: int) -> ImageQuery:
        """Return self if every field is usable for a model with ``n_classes`` classes, else raise InvalidInput."""
        for name, value in (("true class", self.true_class), ("predicted class", self.predicted_class),
                            ("probability class", self.probability_class)):
            if value is not None and not 0 <= value < n_classes:
                raise InvalidInput(f"{name} {value} is out of range: the model has classes 0-{n_classes - 1}")
        if self.correctness not in CORRECTNESS:
            raise InvalidInput(f"correctness must be one of {', '.join(CORRECTNESS)}, got {self.correctness!r}")
        if self.sort not in SORT_ORDERS:
            raise InvalidInput(f"sort must be one of {', '.join(SORT_ORDERS)}, got {self.sort!r}")
        if not 0 <= self.min_confidence <= self.max_confidence <= 1:
            raise InvalidInput(
                f"confidence range must satisfy 0 <= min <= max <= 1, got {self.min_confidence}-{self.max_confidence}"
            )
        if not 0 <= self.min_probability <= 1:
            raise InvalidInput(f"the lowest probability must be between 0 and 1, got {self.min_probability}")
        if self.probability_class is None and (self.sort.startswith("probability") or self.min_probability > 0):
            raise InvalidInput("choose the class whose probability to sort or filter by")
        if self.sort == "likeness" and (self.probability_class is None or not self.likeness_layer):
            raise InvalidInput("choose the class to look like and the layer whose likeness to sort by")
        return self

    @property
    def sorted_by_probability_of(self) -> int | None:
        """The class whose probability orders the images, or None when another order is chosen: the gallery then
        captions each image with that probability, the number its place in the list comes from."""
        return self.probability_class if self.sort.startswith("probability") else None


def find_images(labels: np.ndarray, probabilities: np.ndarray, query: ImageQuery,
                distances: np.ndarray | None = None) -> np.ndarray:
    """Indices of the test images that match ``query``, in its sort order.

    Args:
        labels: true classes [N].
        probabilities: class probabilities [N, classes].
        query: the filters (validated here).
        distances: for the ``likeness`` sort, each image's distance to each class's mean [N, classes].

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
    if query.probability_class is not None:
        keep &= probabilities[:, query.probability_class] >= query.min_probability
    indices = np.flatnonzero(keep)
    if query.sort == "index":
        return indices
    if query.sort == "likeness":
        if distances is None:
            raise InvalidInput("the likeness sort needs the layer's distances to the class means")
        # nearest first; an image whose distance is unknown (a class without test images) goes last
        key = np.nan_to_num(distances[indices, query.probability_class], nan=np.inf)
        return indices[np.argsort(key, kind="stable")]
    key = probabilities[indices, query.probability_class] if query.sort.startswith("probability") \
        else confidence[indices]
    order = np.argsort(key * (1 if query.sort.endswith("-asc") else -1), kind="stable")
    return indices[order]


def model_find_images(loaded: LoadedModel, query: ImageQuery,
                      statistics: StatisticsCache | None = None) -> np.ndarray:
    """:func:`find_images` over ``loaded``'s test set and predictions; the likeness sort takes its distances from
    ``statistics`` (computed once per model version and layer)."""
    distances = None
    if query.sort == "likeness":
        query.validate(len(loaded.class_names))
        if statistics is None:
            raise InvalidInput("the likeness sort is not available here")
        distances = statistics.class_distances(loaded, query.likeness_layer)
    return find_images(loaded.labels, model_predictions(loaded, statistics), query, distances)


def parse_indices(raw: str | None, n_images: int, limit: int) -> tuple[list[int], list[str]]:
    """Image numbers from text such as ``"12, 7 300"``: valid, unique, in order, at most ``limit``.

    Returns:
        ``(indices, problems)``: the usable numbers and one sentence per ignored token, for the user to see.
    """
    indices: list[int] = []
    problems: list[str] = []
    for token in (raw or "").replace(",", " ").split():
        try:
            index = parse_int(token, "an image number")
        except InvalidInput:
            problems.append(f"{token[:40]!r} is not an image number")
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


def parse_image_refs(raw: str | None, n_images: int, limit: int) -> tuple[list[int | str], list[str]]:
    """Test-image numbers and drawn or uploaded images' ids (``u:`` and 20 hex digits) from text such as
    ``"3, u:0123456789abcdef0123 17"``: well-formed, unique, in order, at most ``limit``. Whether an id names a
    stored image is for the caller to check (the store answers that).

    Returns:
        ``(references, problems)``: ints and ``u:`` ids, and one sentence per ignored token, for the user to see.
    """
    references: list[int | str] = []
    problems: list[str] = []
    for token in (raw or "").replace(",", " ").split():
        if token.startswith(PREFIX):
            if not is_user_image(token):
                problems.append(f"{token[:40]!r} is not an image id (u: and 20 hex digits)")
                continue
            reference: int | str = token
        else:
            numbers, token_problems = parse_indices(token, n_images, 1)
            if token_problems:
                problems.extend(token_problems)
                continue
            reference = numbers[0]
        if reference in references:
            continue
        if len(references) >= limit:
            problems.append(f"at most {limit} images: {reference} and later ones are left out")
            break
        references.append(reference)
    return references, problems

