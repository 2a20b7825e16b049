"""JSON routes of the finder: the confusion matrix and the test images that match filters."""

from __future__ import annotations

from flask import jsonify, request

from app.api.blueprint import api, float_arg, int_arg
from app.context import app_context
from app.core.classes import check_class
from app.core.finder import ImageQuery, model_confusion, model_find_images


def _optional_class_arg(loaded, name: str) -> int | None:
    return None if request.args.get(name) in (None, "") else check_class(loaded, int_arg(name))


@api.get("/api/models/<name>/confusion")
def confusion(name: str):
    """The model's confusion matrix on its test set (rows: true class, columns: predicted class)."""
    loaded = app_context().store.get(name)
    matrix = model_confusion(loaded, app_context().statistics)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        class_names=loaded.class_names,
        matrix=matrix.tolist(),
        total=int(matrix.sum()),
        correct=int(matrix.trace()),
    )


@api.get("/api/models/<name>/images")
def find_images(name: str):
    """The image finder: test images filtered by ``true``, ``predicted``, ``correct`` (all/correct/wrong) and
    confidence (``min_conf``, ``max_conf``) and the probability of class ``class`` (``min_prob``), sorted by ``sort``
    (confidence-asc, confidence-desc, index, probability-desc, probability-asc: by the probability of ``class``;
    likeness: nearest first to the mean output of ``class`` at ``layer``, each image with its ``distance``)."""
    loaded = app_context().store.get(name)
    query = ImageQuery(
        true_class=_optional_class_arg(loaded, "true"),
        predicted_class=_optional_class_arg(loaded, "predicted"),
        correctness=request.args.get("correct", "all"),
        min_confidence=float_arg("min_conf", 0.0),
        max_confidence=float_arg("max_conf", 1.0),
        sort=request.args.get("sort", "confidence-asc"),
        probability_class=_optional_class_arg(loaded, "class"),
        min_probability=float_arg("min_prob", 0.0),
        likeness_layer=request.args.get("layer") if request.args.get("sort") == "likeness" else None,
    )
    statistics = app_context().statistics
    indices = model_find_images(loaded, query, statistics)
    distances = statistics.class_distances(loaded, query.likeness_layer) if query.sort == "likeness" else None
    probabilities = statistics.predictions(loaded)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        count=len(indices),
        images=[
            {
                "image": int(index),
                "label": int(loaded.labels[index]),
                "predicted": int(probabilities[index].argmax()),
                "confidence": float(probabilities[index].max()),
                **({"probability": float(probabilities[index, query.probability_class])}
                   if query.probability_class is not None else {}),
                **({"distance": float(distances[index, query.probability_class])} if distances is not None else {}),
            }
            for index in indices
        ],
    )
