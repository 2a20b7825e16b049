"""The JSON API's blueprint, its one mapping from core errors to status codes, and its parameter parsers.

Route modules (:mod:`app.api.models`, :mod:`~app.api.finder`, :mod:`~app.api.classes`, :mod:`~app.api.units`,
:mod:`~app.api.jobs`) register on :data:`api`; handlers only parse the request and call the core.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, UnsupportedMediaType

from app.context import app_context
from app.core.errors import Conflict, ExplorerError, InvalidInput, NotFound, StillComputing, TooLarge, Unavailable
from app.core.limits import format_bytes
from app.core.parsing import loads_json, parse_float, parse_int
from app.views.images import ImageRef
from app.views.images import image_ref as views_image_ref

logger = logging.getLogger(__name__)

api = Blueprint("api", __name__)
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"

# The core says what went wrong; this is the one place that says which HTTP status that is.
STATUS_OF = ((NotFound, 404), (Conflict, 409), (TooLarge, 413), (InvalidInput, 400), (Unavailable, 503))


def status_of(exc: ExplorerError) -> int:
    """The HTTP status of a core error: 404 not found, 409 conflict, 413 too large, 503 unavailable, 400 invalid
    input (and any other)."""
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), 400)


@api.errorhandler(ExplorerError)
def _client_error(exc: ExplorerError):
    if isinstance(exc, StillComputing):  # not a failure: 202, how far the background job is, ask again
        return jsonify({"message": str(exc), **exc.details()}), 202
    return jsonify({"error": str(exc), **exc.details()}), status_of(exc)


def http_error_answer(exc: HTTPException):
    """The JSON answer of an HTTP error; a body over the route's limit (with or without ``Content-Length``) names
    the limit."""
    message = exc.description
    limit = request.max_content_length
    if isinstance(exc, RequestEntityTooLarge) and limit is not None:
        message = f"the request body is larger than the limit of {format_bytes(limit)}"
        if limit == app_context().settings.max_request_bytes:
            message += " (MAX_REQUEST_BYTES)"
    return jsonify(error=message), exc.code


@api.errorhandler(Exception)
def _unexpected_error(exc: Exception):
    if isinstance(exc, HTTPException):
        return http_error_answer(exc)
    logger.exception("unexpected error in %s", request.path)
    return jsonify(error=f"internal error: {type(exc).__name__}"), 500


def int_arg(name: str, default: int | None = None, low: int | None = None, high: int | None = None) -> int:
    """A required (or defaulted) integer query parameter: ASCII digits only (not ``１`` or ``1_0``), range-checked,
    else :class:`InvalidInput` (400)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise InvalidInput(f"missing query parameter {name!r}")
        return default
    return parse_int(raw, f"query parameter {name!r}", low, high)


def float_arg(name: str, default: float) -> float:
    """An optional finite number query parameter: ASCII decimal (not ``nan``, ``inf`` or ``1_0``), else
    :class:`InvalidInput` (400)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    return parse_float(raw, f"query parameter {name!r}")


def str_arg(name: str, max_length: int = 200) -> str:
    """A required string query parameter of at most ``max_length`` characters, else :class:`InvalidInput` (400)."""
    raw = request.args.get(name, "")
    if not raw:
        raise InvalidInput(f"missing query parameter {name!r}")
    if len(raw) > max_length:
        raise InvalidInput(f"query parameter {name!r} is longer than {max_length} characters")
    return raw


def json_body(required: bool = True) -> dict:
    """The request's JSON object, parsed with bounded size and nesting (a 200,000-deep body is a 400, not a
    RecursionError); an empty body is ``{}`` unless ``required``.

    Raises:
        UnsupportedMediaType: (415) a body, or a ``Content-Type``, that is not ``application/json``: a form of
            another site can send ``text/plain`` or form-encoded bodies without asking, never JSON.
        InvalidInput: not JSON, not an object, too deep, or (``required``) empty.
    """
    require_media_type(JSON_TYPE, allow_no_body=True)
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise InvalidInput("the request body must be a JSON object")
        return {}
    body = loads_json(data)
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def require_media_type(media_type: str, allow_no_body: bool = False) -> None:
    """Refuse (415) a request whose ``Content-Type`` is not ``media_type``; with ``allow_no_body``, a request
    with neither a body nor a ``Content-Type`` passes (``curl -X POST`` of a stop)."""
    if request.mimetype == media_type:
        return
    if allow_no_body and not request.content_type and not request.content_length \
            and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    raise UnsupportedMediaType(f"send {media_type}, not {(request.mimetype or 'a body without Content-Type')[:60]}")


def image_arg(engine, name: str = "image") -> int:
    """The test-image index in query parameter ``name``, checked against the test set (404 if out of range)."""
    return engine.check_image(int_arg(name))


def image_ref(loaded, name: str = "image") -> ImageRef:
    """The image in query parameter ``name`` (:func:`app.views.images.image_ref`): a test-image index (404 if out
    of range) or a drawn or uploaded image ``u:<id>`` (404 if there is none, 400 if malformed)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        raise InvalidInput(f"missing query parameter {name!r}")
    return views_image_ref(loaded, raw, app_context().user_images, f"query parameter {name!r}")


def image_fields(image: ImageRef) -> dict:
    """How an answer names its image: ``image`` (index or ``u:<id>``) and ``label`` (None for a user's image)."""
    return {"image": image.key, "label": image.label}


@api.route("/api/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
def unknown_route(rest: str):
    """Unknown API paths answer JSON 404 instead of falling through to the Dash page router."""
    raise NotFound(f"no API route /api/{rest}")
