"""JSON routes of the explorer: health, the model list, one model's layers and compatibility report, a layer's
activations (nested, or a view's grid as raw float32), a prediction; an editor's upload and deletion of models."""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Response, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from app.api.blueprint import MULTIPART_TYPE, api, image_fields, image_ref, int_arg, str_arg
from app.auth.gate import current_user_name
from app.context import app_context
from app.core.errors import Conflict, ExplorerError, InvalidInput, TooLarge
from app.core.grid import MAP_ORDERS
from app.core.limits import format_bytes
from app.core.uploads import IncomingFile, add_model
from app.views.explore import ExploreView, explore
from app.views.models import delete_model


@api.get("/healthz")
def healthz():
    """Health for a load balancer: the model store is readable and the job store answers; 503 naming the part
    that does not. ``warm``: whether the default model is open yet (``make run`` opens it in the background)."""
    problems = {}
    try:
        models = len(app_context().store.names())
    except OSError as exc:
        models, problems["model_store"] = 0, f"cannot list the model store: {exc.strerror or exc}"
    try:
        app_context().job_store.list(1)
    except ExplorerError as exc:
        problems["job_store"] = str(exc)
    # "warm": the default model is opened (probe traced and compiled): the first view waits for no set-up
    warm = app_context().default_model_opened
    if problems:
        return jsonify(status="unavailable", models=models, warm=warm, problems=problems), 503
    return jsonify(status="ok", models=models, warm=warm)


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
        "cost": loaded.cost.as_dict() if loaded.cost else None,
    }


@api.get("/api/models")
def list_models():
    """Every model in the store, broken ones with their reason, usable ones with their cost per image
    (``parameters``, ``activation_bytes``, ``flops``)."""
    rows = [
        {
            "name": entry.name,
            "status": "ok" if entry.ok else "broken",
            "reason": entry.reason or None,
            "notes": list(entry.notes),
            "version": entry.version,
            "metrics": entry.meta.get("metrics", {}),
            "dataset": entry.meta.get("dataset"),
            "cost": entry.cost.as_dict() if entry.cost else None,
        }
        for entry in app_context().store.entries()
    ]
    return jsonify(models=rows)


@api.get("/api/models/<name>")
def get_model(name: str):
    """One model's layers (type, output shape), test-set size, class names and metrics."""
    return jsonify(model_summary(app_context().store.get(name)))


@api.get("/api/models/<name>/activations")
def get_activations(name: str):
    """The output of one layer for one test image (or a drawn or uploaded one, ``image=u:<id>``): shape and nested
    values (batch axis dropped)."""
    loaded = app_context().store.get(name)
    engine = loaded.engine
    info = engine.layer(str_arg("layer"))
    image = image_ref(loaded)
    values = engine.activations(info.name, image.subject)
    return jsonify(
        model=loaded.name,
        version=loaded.version,
        layer=info.name,
        type=info.class_name,
        **image_fields(image),
        shape=list(values.shape),
        values=values.tolist(),
    )


@api.get("/api/models/<name>/grid")
def get_grid(name: str):
    """The explorer's grid of one layer for one image (``image``, a number or ``u:<id>``; ``scaled=1`` for the
    standardised view) as its raw values: little-endian float32, row by row, NaN past the last unit; the shape in
    ``X-Grid-Shape`` ("height,width"). The grid's hover label reads the exact values from here.

    A layer with more maps than a page holds answers one page (``page``, from 1, default 1; ``order``: ``model``
    or ``active``, most active first), its true map numbers in ``X-Grid-Units`` (comma-separated, in the order
    tiled) and ``X-Grid-Page`` ("page/pages"); a page past the last or an unknown order is a 400.

    ``version`` (optional) names the model version the caller's figure was made from: 409 if the model changed
    since, so a label never shows another version's values. The answer is the same for the same URL while the
    model version lasts, so the browser may keep it.
    """
    loaded = app_context().store.get(name)
    checked_version(loaded)
    order = request.args.get("order") or MAP_ORDERS[0]
    if order not in MAP_ORDERS:
        raise InvalidInput(f"query parameter 'order' must be one of {', '.join(MAP_ORDERS)}")
    page = int_arg("page", 1, 1)
    view = ExploreView(model=name, layer=str_arg("layer"), image=str_arg("image", 80),
                       scale=bool(int_arg("scaled", 0, 0, 1)), page=page, order=order)
    result = explore(app_context().store, app_context().user_images, view)  # what the explorer's page draws
    pages = result.page.count if result.page is not None else 1
    if page > pages:
        raise InvalidInput(f"page {page} is past the last page of layer {result.layer.name!r}: it has {pages}")
    headers = {}
    if result.page is not None:
        headers = {"X-Grid-Units": ",".join(str(unit) for unit in result.page.units),
                   "X-Grid-Page": f"{result.page.number}/{result.page.count}"}
    return grid_response(result.grid, loaded.version, headers)


def checked_version(loaded) -> None:
    """Raise Conflict when the request's ``version`` (optional) is not ``loaded``'s: a hover label reading the
    values of a figure made from another version would show numbers the figure does not."""
    expected = request.args.get("version")
    if expected and expected != loaded.version:
        raise Conflict(f"model {loaded.name!r} changed since this view was made: reload it")


def grid_response(grid: np.ndarray, version: str, headers: dict[str, str] | None = None) -> Response:
    """A tiled grid as a hover label reads it: little-endian float32, row by row, its shape in ``X-Grid-Shape``
    (and any other ``headers``); the same for the same URL while the model version lasts, so the browser may keep
    it."""
    return Response(
        np.ascontiguousarray(grid, dtype="<f4").tobytes(),
        mimetype="application/octet-stream",
        headers={"X-Grid-Shape": f"{grid.shape[0]},{grid.shape[1]}", "X-Model-Version": version,
                 "Cache-Control": "private, max-age=3600", **(headers or {})},
    )


@api.get("/api/models/<name>/predict")
def predict(name: str):
    """Class probabilities of one test image (or ``image=u:<id>``, whose ``label`` is null) with the predicted and
    true class; an image the model cannot score (non-finite pixels give non-finite outputs) has ``null``
    probabilities, no prediction and ``finite: false``."""
    loaded = app_context().store.get(name)
    engine = loaded.engine
    image = image_ref(loaded)
    probabilities = engine.probabilities(image.subject)
    finite = bool(np.isfinite(probabilities).all())
    return jsonify(
        model=loaded.name,
        probabilities=probabilities.tolist(),
        finite=finite,
        predicted=int(probabilities.argmax()) if finite else None,
        **image_fields(image),
        class_names=loaded.class_names,
    )


def layer_report(verdicts) -> list[dict[str, Any]]:
    """The compatibility report's rows: each layer, how it is shown (``maps``, ``nodes`` or ``null``) and why not."""
    return [verdict.as_dict() for verdict in verdicts]


@api.get("/api/models/<name>/report")
def get_report(name: str):
    """The compatibility report of a usable model: every layer, shown as a map grid, a node grid, or not (why)."""
    loaded = app_context().store.get(name)
    return jsonify(model=loaded.name, version=loaded.version, notes=list(loaded.notes),
                   layers=layer_report(loaded.engine.verdicts))


def _incoming(field: str) -> IncomingFile | None:
    upload = request.files.get(field)
    if upload is None or not upload.filename:
        return None
    return IncomingFile(upload.filename, upload.stream)


@api.post("/api/models")
def upload_model():
    """Add a model: multipart form with ``name``, ``model`` (.keras, .h5 or a .zip of a model folder) and ``test_set``
    (.npz) or ``dataset`` (a built-in dataset's test split). 201 with the compatibility report; 400 / 409 / 413 with
    the reason, the store unchanged."""
    settings = app_context().settings
    request.max_content_length = settings.max_upload_bytes
    if (request.content_length or 0) > settings.max_upload_bytes:
        raise TooLarge(f"the upload ({format_bytes(request.content_length)}) is larger than the limit of "
                       f"{format_bytes(settings.max_upload_bytes)} (MAX_UPLOAD_BYTES)")
    if request.mimetype != MULTIPART_TYPE:
        raise UnsupportedMediaType("send the model as multipart/form-data: fields name, model, and test_set or "
                                   "dataset")
    model_file = _incoming("model")
    if model_file is None:
        raise InvalidInput("the form has no 'model' file")
    name = request.form.get("name", "").strip()
    if not name:
        raise InvalidInput("the form has no 'name' for the new model")
    added = add_model(
        app_context().store,
        name,
        model_file,
        test_set=_incoming("test_set"),
        dataset=request.form.get("dataset", "").strip() or None,
        sources=settings.data_sources,
        uploaded_by=current_user_name(),
        max_bytes=settings.max_upload_bytes,
    )
    answer = jsonify(
        name=added.name,
        test_set_size=added.n_images,
        classes=added.n_classes,
        notes=list(added.notes),
        ignored=list(added.ignored),
        layers=layer_report(added.verdicts),
    )
    answer.status_code = 201
    answer.headers["Location"] = f"/api/models/{added.name}"
    return answer


@api.delete("/api/models/<name>")
def delete_model_route(name: str):
    """Delete a model (an editor's write): 204, or 404 if there is none of that name."""
    delete_model(app_context().store, app_context().statistics_jobs, name)
    return "", 204
