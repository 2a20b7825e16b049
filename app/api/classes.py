"""JSON routes of the classes page: class means, the difference of two classes, and the MLP contributions."""

from __future__ import annotations

from flask import jsonify, request

from app.api.blueprint import api, image_fields, int_arg, str_arg
from app.api.models import checked_version, grid_response
from app.context import app_context
from app.core.classes import check_class, class_difference
from app.core.errors import InvalidInput, NotFound
from app.core.grid import tile
from app.core.parsing import parse_int
from app.views.images import MAX_REFERENCE_CHARS
from app.views.why import WhyView, why


def _class_arg(loaded, name: str) -> int:
    return check_class(loaded, int_arg(name))


def _classes_arg(name: str = "classes") -> tuple[int, int]:
    """Two comma-separated integers, e.g. ``classes=4,9``."""
    raw = str_arg(name)
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != 2:
        raise InvalidInput(
            f"query parameter {name!r} must be two comma-separated classes such as 4,9, got {raw[:40]!r}"
        )
    try:
        return parse_int(parts[0], name), parse_int(parts[1], name)
    except InvalidInput:
        raise InvalidInput(f"query parameter {name!r} must hold integers, got {raw[:40]!r}") from None


@api.get("/api/models/<name>/class-mean")
def class_mean(name: str):
    """Mean output of one layer over the test images of one class, with the number of images averaged."""
    loaded = app_context().store.get(name)
    info = loaded.engine.layer(str_arg("layer"))
    label = _class_arg(loaded, "label")
    means = app_context().statistics.class_means(loaded, info.name)
    if means.counts[label] == 0:
        raise NotFound(f"class {label} has no images in the test set")
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=info.name,
        label=label,
        count=int(means.counts[label]),
        shape=list(info.output_shape),
        values=means.means[label].tolist(),
    )


@api.get("/api/models/<name>/class-grid")
def class_grid(name: str):
    """The Classes page's grid of one layer as raw values (as ``/grid`` gives the explorer's): the mean of class
    ``label``, or with ``a`` and ``b`` instead the difference mean a − mean b; ``version`` as for ``/grid``."""
    loaded = app_context().store.get(name)
    checked_version(loaded)
    info = loaded.engine.layer(str_arg("layer"))
    means = app_context().statistics.class_means(loaded, info.name)
    if "label" in request.args:
        values = means.means[_class_arg(loaded, "label")]
    else:
        values = class_difference(means, _class_arg(loaded, "a"), _class_arg(loaded, "b")).difference
    return grid_response(tile(values)[0], loaded.version)


@api.get("/api/models/<name>/class-difference")
def class_difference_route(name: str):
    """Mean of class ``a`` minus mean of class ``b`` at a layer, with the ``top`` units that differ most."""
    loaded = app_context().store.get(name)
    info = loaded.engine.layer(str_arg("layer"))
    class_a, class_b = _class_arg(loaded, "a"), _class_arg(loaded, "b")
    top = int_arg("top", 10, 1, info.n_units)
    diff = class_difference(app_context().statistics.class_means(loaded, info.name), class_a, class_b)
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


@api.get("/api/models/<name>/contributions")
def contributions_route(name: str):
    """For one image (a test image or ``image=u:<id>``): node activation x weight to two classes' logits of the next
    Dense layer, plus biases; what the "Why this prediction?" page shows (:func:`app.views.why.why`)."""
    app_context().store.get(name)  # an unknown model is a 404 whatever the rest of the request says
    layer, image = str_arg("layer"), str_arg("image", MAX_REFERENCE_CHARS)
    a, b = _classes_arg()
    shown = why(app_context().store, app_context().user_images, WhyView(name, layer, image, a, b))
    result = shown.contributions
    return jsonify(
        model=shown.loaded.name,
        version=shown.loaded.version,
        layer=result.layer,
        target=result.target,
        **image_fields(shown.image),
        classes=list(result.classes),
        activations=result.activations.tolist(),
        contributions=result.contributions.tolist(),
        bias=result.bias.tolist(),
        logits=result.logits.tolist(),
        difference=result.difference.tolist(),
        probabilities=shown.probabilities.tolist(),
        predicted=shown.predicted,
    )
