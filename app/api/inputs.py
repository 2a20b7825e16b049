"""JSON routes for a user's own images: draw or upload one for a model, then address it as ``image=u:<id>``.

``POST /api/models/<name>/inputs`` is a view-level action (a viewer may draw; :mod:`app.auth.gate` lets it through),
bounded by ``MAX_IMAGE_BYTES`` before the body is read. Nothing is stored unless the image is good.
"""

from __future__ import annotations

import base64

import numpy as np
from flask import Response, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from app.api.blueprint import JSON_TYPE, MULTIPART_TYPE, api
from app.context import app_context
from app.core.activations import ProvidedImage
from app.core.errors import InvalidInput, TooLarge
from app.core.limits import format_bytes
from app.core.parsing import loads_json
from app.core.user_images import UserImage, add_array, add_drawing, add_upload

FALSE_WORDS = frozenset({"0", "false", "no", "off"})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def _centre(body: dict | None) -> bool:
    """The ``centre`` choice: a JSON boolean in the body, or ``centre=0``/``1`` in the form or the query."""
    raw = body.get("centre", True) if body is not None else request.form.get("centre", request.args.get("centre"))
    if raw is None or isinstance(raw, bool):
        return True if raw is None else raw
    if isinstance(raw, str) and raw.strip().lower() in FALSE_WORDS | TRUE_WORDS:
        return raw.strip().lower() in TRUE_WORDS
    raise InvalidInput("'centre' must be true or false")


def input_answer(loaded, image: UserImage) -> dict:
    """What a client needs after adding an image: its id, the preview (a data URL and URLs of the preview and the
    original), the recipe used, and the model's prediction."""
    probabilities = loaded.engine.probabilities(ProvidedImage(image.id, image.model_input))
    finite = bool(np.isfinite(probabilities).all())
    preview = app_context().user_images.preview(image)
    return {
        "id": image.id,
        "model": loaded.name,
        "source": image.meta.get("source"),
        "recipe": image.meta.get("recipe"),
        "shape": list(image.model_input.shape),
        "preview": "data:image/png;base64," + base64.b64encode(preview).decode("ascii"),
        "preview_url": f"/api/inputs/{image.id}/preview.png",
        "original_url": f"/api/inputs/{image.id}/original.png",
        "prediction": {
            "probabilities": probabilities.tolist(),
            "predicted": int(probabilities.argmax()) if finite else None,
            "finite": finite,
            "class_names": loaded.class_names,
        },
    }


@api.post("/api/models/<name>/inputs")
def add_input(name: str):
    """Add a drawn or uploaded image for model ``name``: multipart ``image`` file (PNG, JPEG, GIF, BMP, WebP), or
    JSON ``{"strokes": [[[x, y], ...], ...], "width": w, "size": s}``, or JSON ``{"array": [[...]]}`` of the
    model's input shape. 201 with the id, the preview and the prediction; 400 / 413 with the reason, nothing
    stored."""
    limit = app_context().settings.max_image_bytes
    if (request.content_length or 0) > limit:
        raise TooLarge(f"the request ({format_bytes(request.content_length)}) is larger than the limit of "
                       f"{format_bytes(limit)} (MAX_IMAGE_BYTES)")
    request.max_content_length = limit  # also bounds a body sent without Content-Length
    loaded = app_context().store.get(name)
    images = app_context().user_images
    if request.mimetype == MULTIPART_TYPE:
        upload = request.files.get("image")
        if upload is None or not upload.filename:
            raise InvalidInput("the form has no 'image' file")
        image = add_upload(images, loaded, upload.stream.read(limit + 1), limit, _centre(None))
    elif request.mimetype == JSON_TYPE:
        body = loads_json(request.get_data(cache=False), max_bytes=limit)
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object with 'strokes' or 'array'")
        if "strokes" in body:
            image = add_drawing(images, loaded, body["strokes"], body.get("width"), body.get("size"), _centre(body))
        elif "array" in body:
            image = add_array(images, loaded, body["array"])
        else:
            raise InvalidInput("the JSON object needs 'strokes' (with 'width' and 'size') or 'array'")
    else:
        raise UnsupportedMediaType("send an image file as multipart/form-data (field 'image'), or JSON strokes or "
                                   "array")
    answer = jsonify(input_answer(loaded, image))
    answer.status_code = 201
    answer.headers["Location"] = f"/api/inputs/{image.id}"
    return answer


@api.get("/api/inputs/<reference>")
def get_input(reference: str):
    """A stored image's metadata: the model it was made for, the recipe, the source, its shape, when."""
    stored = app_context().user_images.get(reference)
    return jsonify({**stored.meta, "preview_url": f"/api/inputs/{stored.id}/preview.png",
                    "original_url": f"/api/inputs/{stored.id}/original.png"})


@api.get("/api/inputs/<reference>/<which>.png")
def input_png(reference: str, which: str):
    """A stored image's ``preview`` (what the model sees) or ``original`` (as drawn or uploaded) PNG."""
    data = app_context().user_images.png(reference, which)
    # The id is a hash of the content: the same URL always means the same picture.
    return Response(data, mimetype="image/png", headers={"Cache-Control": "private, max-age=31536000, immutable"})
