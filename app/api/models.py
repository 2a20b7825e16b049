"""JSON routes of the explorer: health, the model list, one model's layers, a layer's activations, a prediction."""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import jsonify

from app import services
from app.api.blueprint import api, image_arg, str_arg
from app.core.errors import ExplorerError


@api.get("/healthz")
def healthz():
    """Health for a load balancer: the model store is readable and the job store answers; 503 naming the part
    that does not."""
    problems = {}
    try:
        models = len(services.store().names())
    except OSError as exc:
        models, problems["model_store"] = 0, f"cannot list the model store: {exc.strerror or exc}"
    try:
        services.job_store().list(1)
    except ExplorerError as exc:
        problems["job_store"] = str(exc)
    if problems:
        return jsonify(status="unavailable", models=models, problems=problems), 503
    return jsonify(status="ok", models=models)


def model_summary(loaded) -> dict[str, Any]:
    """Everything a client needs to know about a usable model: layers, test set, classes, metrics."""
    engine = loaded.engine
    return {
        "name": loaded.name,
        "version": loaded.version,
        "status": "ok",
        "input_shape": list(loaded.images.shape[1:]),
        "test_set_size": engine.n_images,
        "class_names": loaded.class_names,
        "notes": list(loaded.notes),
        "layers": [
            {
                "name": info.name,
                "type": info.class_name,
                "output_shape": list(info.output_shape),
                "units": info.n_units,
                "kind": "maps" if info.is_map else "nodes",
            }
            for info in engine.layers
        ],
        "metrics": loaded.meta.get("metrics", {}),
        "dataset": loaded.meta.get("dataset"),
        "created": loaded.meta.get("created"),
    }


@api.get("/api/models")
def list_models():
    """Every model in the store, broken ones with their reason."""
    rows = [
        {
            "name": entry.name,
            "status": "ok" if entry.ok else "broken",
            "reason": entry.reason or None,
            "notes": list(entry.notes),
            "version": entry.version,
            "metrics": entry.meta.get("metrics", {}),
            "dataset": entry.meta.get("dataset"),
        }
        for entry in services.store().entries()
    ]
    return jsonify(models=rows)


@api.get("/api/models/<name>")
def get_model(name: str):
    """One model's layers (type, output shape), test-set size, class names and metrics."""
    return jsonify(model_summary(services.store().get(name)))


@api.get("/api/models/<name>/activations")
def get_activations(name: str):
    """The output of one layer for one test image: shape and nested values (batch axis dropped)."""
    loaded = services.store().get(name)
    engine = loaded.engine
    info = engine.layer(str_arg("layer"))
    index = image_arg(engine)
    values = engine.activations(info.name, index)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=info.name,
        type=info.class_name,
        image=index,
        label=int(loaded.labels[index]),
        shape=list(values.shape),
        values=values.tolist(),
    )


@api.get("/api/models/<name>/predict")
def predict(name: str):
    """Class probabilities of one test image with the predicted and true class; an image the model cannot score
    (non-finite pixels give non-finite outputs) has ``null`` probabilities, no prediction and ``finite: false``."""
    loaded = services.store().get(name)
    engine = loaded.engine
    index = image_arg(engine)
    probabilities = engine.probabilities(index)
    finite = bool(np.isfinite(probabilities).all())
    return jsonify(
        model=loaded.name,
        image=index,
        probabilities=probabilities.tolist(),
        finite=finite,
        predicted=int(probabilities.argmax()) if finite else None,
        label=int(loaded.labels[index]),
        class_names=loaded.class_names,
    )
