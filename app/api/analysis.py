"""JSON routes of the comparison views: confusion matrix, class means, top images per unit, MLP contributions.

Each handler parses the request and calls :mod:`app.core.stats`; bad input becomes a 4xx ``{"error": ...}``.
"""

from __future__ import annotations

from flask import jsonify, request

from app import services
from app.api import ApiError, api, image_arg, int_arg, str_arg
from app.core import stats


@api.errorhandler(stats.StatsError)
def _stats_error(exc: stats.StatsError):
    return jsonify(error=str(exc)), exc.status


def _class_arg(loaded, name: str) -> int:
    return stats.check_class(loaded, int_arg(name))


def _classes_arg(name: str = "classes") -> tuple[int, int]:
    """Two comma-separated integers, e.g. ``classes=4,9``."""
    raw = str_arg(name)
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != 2:
        raise ApiError(f"query parameter {name!r} must be two comma-separated classes such as 4,9, got {raw!r}")
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise ApiError(f"query parameter {name!r} must hold integers, got {raw!r}") from None


@api.get("/api/models/<name>/confusion")
def confusion(name: str):
    """The model's confusion matrix on its test set (rows: true class, columns: predicted class)."""
    loaded = services.store().get(name)
    matrix = stats.model_confusion(loaded)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        class_names=loaded.class_names,
        matrix=matrix.tolist(),
        total=int(matrix.sum()),
        correct=int(matrix.trace()),
    )


@api.get("/api/models/<name>/class-mean")
def class_mean(name: str):
    """Mean output of one layer over the test images of one class, with the number of images averaged."""
    loaded = services.store().get(name)
    info = loaded.engine.layer(str_arg("layer"))
    label = _class_arg(loaded, "label")
    means = stats.STATISTICS.class_means(loaded, info.name)
    if means.counts[label] == 0:
        raise ApiError(f"class {label} has no images in the test set", 404)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=info.name,
        label=label,
        count=int(means.counts[label]),
        shape=list(info.output_shape),
        values=means.means[label].tolist(),
    )


@api.get("/api/models/<name>/class-difference")
def class_difference(name: str):
    """Mean of class ``a`` minus mean of class ``b`` at a layer, with the ``top`` units that differ most."""
    loaded = services.store().get(name)
    info = loaded.engine.layer(str_arg("layer"))
    class_a, class_b = _class_arg(loaded, "a"), _class_arg(loaded, "b")
    top = int_arg("top", 10, 1, info.n_units)
    diff = stats.class_difference(stats.STATISTICS.class_means(loaded, info.name), class_a, class_b)
    ranked = [
        {
            "unit": int(unit),
            "mean_abs_difference": float(diff.scores[unit]),
            "mean_difference": float(diff.signed[unit]),
        }
        for unit in diff.ranking[:top]
    ]
    return jsonify(
        model=loaded.name, layer=info.name, a=class_a, b=class_b, shape=list(info.output_shape),
        difference=diff.difference.tolist(), ranked_units=ranked,
    )


@api.get("/api/models/<name>/top-images")
def top_images(name: str):
    """The ``k`` test images that activate one unit most (``by`` = mean or max over the map), best first."""
    loaded = services.store().get(name)
    info = loaded.engine.layer(str_arg("layer"))
    unit = int_arg("unit", low=0, high=info.n_units - 1)
    k = int_arg("k", 9, 1, min(stats.MAX_TOP_K, loaded.engine.n_images))
    by = stats.check_rank_by(request.args.get("by", "mean"))
    indices, values = stats.top_images(loaded, info.name, unit, k, by)
    predictions = loaded.engine.predictions()
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=info.name,
        unit=unit,
        by=by,
        images=[
            {
                "image": int(index),
                "value": float(value),
                "label": int(loaded.labels[index]),
                "predicted": int(predictions[index].argmax()),
            }
            for index, value in zip(indices, values, strict=True)
        ],
    )


@api.get("/api/models/<name>/contributions")
def contributions(name: str):
    """For one image: node activation x weight to two classes' logits of the next Dense layer, plus biases."""
    loaded = services.store().get(name)
    layer = loaded.engine.layer(str_arg("layer")).name
    index = image_arg(loaded.engine)
    result = stats.contributions(loaded, layer, index, _classes_arg())
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=result.layer,
        target=result.target,
        image=index,
        label=int(loaded.labels[index]),
        classes=list(result.classes),
        activations=result.activations.tolist(),
        contributions=result.contributions.tolist(),
        bias=result.bias.tolist(),
        logits=result.logits.tolist(),
        difference=result.difference.tolist(),
    )


def _float_arg(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ApiError(f"query parameter {name!r} must be a number, got {raw!r}") from None


def _optional_class_arg(loaded, name: str) -> int | None:
    return None if request.args.get(name) in (None, "") else _class_arg(loaded, name)


@api.get("/api/models/<name>/images")
def find_images(name: str):
    """The image finder: test images filtered by ``true``, ``predicted``, ``correct`` (all/correct/wrong) and
    confidence (``min_conf``, ``max_conf``), sorted by ``sort`` (confidence-asc, confidence-desc, index)."""
    loaded = services.store().get(name)
    query = stats.ImageQuery(
        true_class=_optional_class_arg(loaded, "true"),
        predicted_class=_optional_class_arg(loaded, "predicted"),
        correctness=request.args.get("correct", "all"),
        min_confidence=_float_arg("min_conf", 0.0),
        max_confidence=_float_arg("max_conf", 1.0),
        sort=request.args.get("sort", "confidence-asc"),
    )
    indices = stats.model_find_images(loaded, query)
    probabilities = loaded.engine.predictions()
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
            }
            for index in indices
        ],
    )
