"""JSON routes of the Features page: what input a unit looks for, and where the model looks in an image.

``GET /api/models/<name>/features?layer=L`` answers a whole layer's optimal inputs once they are computed (the
first request starts a background job and gets 202 with its progress); ``&unit=u`` answers one unit at once, from
the stored layer when there is one, else computed on demand. ``GET /api/models/<name>/attribution`` answers one
attribution map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import jsonify, request

from app.api.blueprint import api, float_arg, image_arg, int_arg, str_arg
from app.context import app_context
from app.core import attribution as attr
from app.core.features import UnitFeature, unit_of
from app.views.attribution import PREDICTED, explain
from app.views.features import layer_optimal_inputs, unit_optimal_input
from app.views.images import of_subject


def _unit_json(feature: UnitFeature) -> dict[str, Any]:
    return {"unit": feature.unit, "dead": feature.dead, "objective": feature.objective,
            "start_objective": feature.start_objective, "shape": list(feature.image.shape),
            "image": feature.image.tolist()}


@api.get("/api/models/<name>/features")
def features(name: str):
    """A layer's optimal inputs (200), or its job's progress (202); with ``unit``, one unit's at once."""
    loaded = app_context().store.get(name)
    info = loaded.engine.layer(str_arg("layer"))
    head = {"model": loaded.name, "version": loaded.version, "layer": info.name}
    jobs = app_context().feature_jobs
    if request.args.get("unit") is not None:
        unit = int_arg("unit", low=0, high=info.n_units - 1)
        context = app_context()
        shown = unit_optimal_input(jobs, context.statistics, context.gradient_models, loaded, info.name, unit)
        return jsonify(**head, source=shown.source, **_unit_json(shown.feature))
    job = layer_optimal_inputs(jobs, loaded, info.name)
    if job.status != "done":
        return jsonify(**head, **job.progress()), 202
    result = job.result
    units = [_unit_json(unit_of(result, unit)) for unit in range(result.n_units)]
    kernels = None if result.kernels is None else np.moveaxis(result.kernels, -1, 0).tolist()
    return jsonify(**head, **job.progress(), units=units, kernels=kernels)


@api.get("/api/models/<name>/attribution")
def attribution(name: str):
    """One attribution map of a test image for a class (default: the predicted class)."""
    loaded = app_context().store.get(name)
    engine = loaded.engine
    shown = of_subject(loaded, image_arg(engine))
    method = attr.check_method(request.args.get("method", "gradient"))
    target = int_arg("class", PREDICTED, 0, len(loaded.class_names) - 1)
    layer = None
    if method == "gradcam" and request.args.get("layer"):
        layer = engine.layer(str_arg("layer")).name
    explained = explain(
        loaded, app_context().gradient_models, shown, method, target, layer,
        samples=int_arg("samples", attr.DEFAULT_SAMPLES, 1, attr.MAX_SAMPLES),
        noise=float_arg("noise", attr.DEFAULT_NOISE),
        steps=int_arg("steps", attr.DEFAULT_STEPS, 1, attr.MAX_STEPS),
    )
    result = explained.result
    return jsonify(model=loaded.name, version=loaded.version, image=shown.key, label=shown.label,
                   predicted=explained.predicted, method=method, **{"class": explained.target}, logit=result.logit,
                   shape=list(result.map.shape), map=result.map.tolist(), **result.extras)
