"""JSON route of the unit panel: the test images that activate one map or node most."""

from __future__ import annotations

from flask import jsonify, request

from app.api.blueprint import api, int_arg, str_arg
from app.context import app_context
from app.core.units import MAX_TOP_K, check_rank_by


@api.get("/api/models/<name>/top-images")
def top_images(name: str):
    """The ``k`` test images that activate one unit most (``by`` = mean or max over the map), best first; ``dead``
    says the unit is 0 on every test image (its "top" images are then any images with value 0)."""
    loaded = app_context().store.get(name)
    info = loaded.engine.layer(str_arg("layer"))
    unit = int_arg("unit", low=0, high=info.n_units - 1)
    k = int_arg("k", 9, 1, min(MAX_TOP_K, loaded.engine.n_images))
    by = check_rank_by(request.args.get("by", "mean"))
    indices, values = app_context().statistics.top_images(loaded, info.name, unit, k, by)
    predictions = app_context().statistics.predictions(loaded)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=info.name,
        unit=unit,
        by=by,
        dead=app_context().statistics.is_dead(loaded, info.name, unit),
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
