"""The JSON API, a Flask blueprint on the Dash server, over the same core as the pages.

Handlers only parse the request and call the core; every failure becomes a 4xx JSON ``{"error": message}``.
Other issues' routes live in sibling modules that register on :data:`api` too.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request

from app import services
from app.core.activations import ImageOutOfRange, LayerNotFound
from app.core.store import StoreError

logger = logging.getLogger(__name__)

api = Blueprint("api", __name__)


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and a message for the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@api.errorhandler(ApiError)
@api.errorhandler(StoreError)
@api.errorhandler(LayerNotFound)
@api.errorhandler(ImageOutOfRange)
def _client_error(exc: Exception):
    return jsonify(error=str(exc)), getattr(exc, "status", 400)


@api.errorhandler(Exception)
def _unexpected_error(exc: Exception):
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, HTTPException):
        return jsonify(error=exc.description), exc.code
    logger.exception("unexpected error in %s", request.path)
    return jsonify(error=f"internal error: {type(exc).__name__}"), 500


def int_arg(name: str, default: int | None = None, low: int | None = None, high: int | None = None) -> int:
    """A required (or defaulted) integer query parameter, range-checked, else :class:`ApiError` 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(f"missing query parameter {name!r}")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ApiError(f"query parameter {name!r} must be between {low} and {high}, got {value}")
    return value


def str_arg(name: str) -> str:
    """A required string query parameter, else :class:`ApiError` 400."""
    raw = request.args.get(name, "")
    if not raw:
        raise ApiError(f"missing query parameter {name!r}")
    return raw


def image_arg(engine, name: str = "image") -> int:
    """The test-image index in query parameter ``name``, checked against the test set (404 if out of range)."""
    return engine.check_image(int_arg(name))


@api.get("/healthz")
def healthz():
    """Liveness: the server answers and sees its model store."""
    return jsonify(status="ok", models=len(services.store().names()))


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
    """Class probabilities of one test image with the predicted and true class."""
    loaded = services.store().get(name)
    engine = loaded.engine
    index = image_arg(engine)
    probabilities = engine.probabilities(index)
    return jsonify(
        model=loaded.name,
        image=index,
        probabilities=probabilities.tolist(),
        predicted=int(probabilities.argmax()),
        label=int(loaded.labels[index]),
        class_names=loaded.class_names,
    )


@api.route("/api/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
def unknown_route(rest: str):
    """Unknown API paths answer JSON 404 instead of falling through to the Dash page router."""
    raise ApiError(f"no API route /api/{rest}", 404)
