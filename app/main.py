"""The Dash shell: pages, navigation bar, JSON API blueprint and login (:mod:`app.auth`). ``server`` is the WSGI
app."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import html
from flask import Request, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_compress import Compress
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_content_length

from app import context
from app.api import api
from app.api.blueprint import http_error_answer
from app.auth import gate, request_checks
from app.config import Settings
from app.core.parsing import json_safe
from app.ui.copy_link import register_copy_link
from app.ui.model_admin import DELETE_MESSAGE
from app.ui.navigation import PAGES_LOCATION, navbar
from app.ui.training_form import FORM_MESSAGE

APP_DIR = Path(__file__).resolve().parent
ASSETS_DIR = APP_DIR.parent / "assets"
TITLE = "CNN Activation Explorer"
# Component ids whose callbacks write: every callback that changes something reports in one of these message areas
# (start, stop, change the probe: the training form's; delete a model: the Models page's). A new write callback
# must write one of these (tests check it).
WRITE_CALLBACK_OUTPUTS = frozenset({FORM_MESSAGE, DELETE_MESSAGE})

logger = logging.getLogger(__name__)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON with non-finite numbers written as ``null``: bare ``NaN`` is not JSON (RFC 8259).

    The fast path is the standard encoder; only a response that holds NaN or infinity is walked and cleaned.
    """

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        try:
            return json.dumps(obj, allow_nan=False, **kwargs)
        except ValueError:
            return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def callback_failed(error: Exception) -> None:
    """Dash's ``on_error`` for every callback: a failure the callback did not turn into a message is logged with
    its traceback and leaves the page as it was (no update), never a 500 that breaks the page's other callbacks."""
    body = request.get_json(silent=True)
    output = body.get("output") if isinstance(body, dict) else None
    logger.error("callback %s failed", output, exc_info=error)


class WholeBodyStream(LimitedStream):
    """A request body without a ``Content-Length`` (chunked), read up to the route's limit: one that goes past it is
    refused with 413, never handed over cut.

    werkzeug's own stream stops reading at the limit and returns what it read: measured, a 1.2 MB chunked JSON body
    reached the routes as its first 1 MB ("invalid JSON"), and Dash's callback route answered an HTML 400.
    """

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return data


class BoundedRequest(Request):
    """Flask's request whose body, when its length is not announced, is a :class:`WholeBodyStream`."""

    @cached_property
    def stream(self):
        limit = self.max_content_length
        if (limit is None or self.shallow or get_content_length(self.environ) is not None
                or "wsgi.input_terminated" not in self.environ):
            return super().stream
        return WholeBodyStream(self.environ["wsgi.input"], limit, is_max=True)


def refuse_malformed_callback(error: Exception):
    """A request to Dash's callback route that Dash itself cannot dispatch (a hand-made body, not a browser's) is
    a 400, not a 500; an HTTP error under ``/api/`` or on the callback route (a path Flask cannot route at all, a
    body over the limit) is JSON like every answer there; on every other route an unexpected error stays a logged
    500."""
    if isinstance(error, HTTPException):
        if request.path.startswith("/api/") or request.path == "/_dash-update-component":
            return http_error_answer(error)
        return error
    if request.path == "/_dash-update-component":
        return jsonify(error=f"malformed callback request ({type(error).__name__})"), 400
    logger.exception("unexpected error in %s", request.path)
    return jsonify(error=f"internal error: {type(error).__name__}"), 500


def refuse_forged_location():
    """A callback request whose page location is not what a browser's address bar holds (a pathname that is not
    text starting with "/", a search that is not text) is a 400: Dash's pages router, which reads it, would fail
    on it with a traceback logged for every such request."""
    if request.path != "/_dash-update-component":
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None  # left to Dash and refuse_malformed_callback
    for entry in [*_listed(body.get("inputs")), *_listed(body.get("state"))]:
        if not isinstance(entry, dict) or entry.get("id") != PAGES_LOCATION:
            continue
        value = entry.get("value")
        if entry.get("property") == "pathname" and not (isinstance(value, str) and value.startswith("/")):
            return jsonify(error="malformed callback request: the page's pathname must be text starting with /"), 400
        if entry.get("property") == "search" and not (value is None or isinstance(value, str)):
            return jsonify(error="malformed callback request: the page's search must be text"), 400
    return None


def _listed(value: Any) -> list:
    """Dash's ``inputs``/``state``: a list whose items are entries or, for pattern-matching ids, lists of them."""
    if not isinstance(value, list):
        return []
    return [entry for item in value for entry in (item if isinstance(item, list) else [item])]


# Sent with every response: no MIME sniffing, no framing by other sites (clickjacking), no full URLs (which carry
# the view's state) leaked to other origins. The Content-Security-Policy is added by :class:`SecurityHeaders`.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Measured in headless chromium on every page (tests/browser/test_content_security_policy.py): Dash, its components
# and plotly.js run without 'unsafe-eval' and with no inline script but Dash's own (allowed by hash); styles need
# 'unsafe-inline': Dash's components and plotly.js write <style> elements and style attributes.
# Thumbnails and plotly's heatmap images are data: URIs; plotly's PNG download is a blob.
CSP_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


# Responses are compressed for browsers that ask (a hosted instance's users are not on loopback). The fastest levels:
# measured on a Conv2D_1 view (131 kB of JSON), zstd level 1 gives 28 kB in 0.27 ms, brotli 1 30 kB in 0.6 ms,
# gzip 1 30 kB in 1.3 ms, where the libraries' defaults (zstd 3, brotli 4, gzip 6) took 0.4-3.2 ms for 26-28 kB.
COMPRESSION = {
    "COMPRESS_ALGORITHM": ["zstd", "br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["zstd", "br"],
    "COMPRESS_ZSTD_LEVEL": 1,
    "COMPRESS_BR_LEVEL": 1,
    "COMPRESS_LEVEL": 1,
    # Text, scripts and JSON, and the raw float32 grids the hover label fetches (a ReLU grid is mostly zeros).
    "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/plain", "text/javascript", "application/javascript",
                           "application/json", "image/svg+xml", "application/octet-stream"],
}


def content_security_policy(script_hashes: list[str]) -> str:
    """The Content-Security-Policy header: :data:`CSP_DIRECTIVES` with ``script_hashes`` (``'sha256-...'``, the
    inline scripts Dash writes into every page) added to ``script-src``."""
    directives = {**CSP_DIRECTIVES, "script-src": [*CSP_DIRECTIVES["script-src"], *script_hashes]}
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class SecurityHeaders:
    """The ``after_request`` hook that puts :data:`SECURITY_HEADERS` and the Content-Security-Policy on every
    answer, 401s and errors included.

    The policy allows Dash's inline scripts (its renderer, the pages' title updater, any inline clientside
    callback) by their hashes. Dash registers the title updater in a ``before_request`` hook of its own, on the
    first request, so the policy is computed once, at the end of the first request (Dash's hooks run before every
    ``after_request``), not when the app is built.
    """

    def __init__(self, app: dash.Dash):
        self._app = app
        self._headers: dict[str, str] | None = None
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        """Every security header, the policy computed on the first call."""
        if self._headers is not None:
            return self._headers
        with self._lock:
            if self._headers is None:
                policy = content_security_policy(list(self._app.csp_hashes()))
                self._headers = {**SECURITY_HEADERS, "Content-Security-Policy": policy}
            return self._headers

    def __call__(self, response):
        for name, value in self.headers().items():
            response.headers.setdefault(name, value)
        return response


def create_app(settings: Settings | None = None) -> dash.Dash:
    """Build the Dash app and its :class:`~app.context.AppContext` from ``settings`` (default: the environment's,
    see :mod:`app.config`)."""
    settings = settings or Settings.from_env()
    app = dash.Dash(
        # The package name makes Dash import pages as app.pages.<name>, the same modules tests and code import.
        "app",
        use_pages=True,
        pages_folder=str(APP_DIR / "pages"),
        assets_folder=str(ASSETS_DIR),
        title=TITLE,
        suppress_callback_exceptions=True,
        update_title=None,
        on_error=callback_failed,
    )
    app.layout = html.Div([navbar(TITLE), dbc.Container(dash.page_container, fluid=True)])
    register_copy_link()
    server = app.server
    context.install(server, context.AppContext(settings))
    server.json = StrictJSONProvider(server)
    server.request_class = BoundedRequest
    # Checked from Content-Length before a body is read, and while reading one without it; larger bodies get 413.
    server.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    server.register_error_handler(Exception, refuse_malformed_callback)
    server.register_blueprint(api)
    server.config.update(COMPRESSION)
    Compress(server)

    def served_settings() -> Settings:
        # Read at every request: a test gives the app a new context after changing the environment.
        return context.of_server(server).settings

    gate.install(server, served_settings, callback_endpoint=app.config.routes_pathname_prefix
                 + "_dash-update-component", write_outputs=WRITE_CALLBACK_OUTPUTS, realm=TITLE)
    request_checks.install(server, served_settings)
    server.before_request(refuse_forged_location)
    server.extensions["security_headers"] = SecurityHeaders(app)
    server.after_request(server.extensions["security_headers"])
    # Dash finishes its setup (scripts registered, callbacks collected) in a before_request hook of the first
    # request, and marks it done as it starts: a request on another thread meanwhile was served from the half-built
    # state (500 "dash is not a registered library" for the page's scripts, seen with gunicorn's threads). One
    # request here, before any server takes requests, completes it: to /healthz, the one route open without a
    # login (a 401 from the login's check would leave the setup undone).
    server.test_client().get("/healthz")
    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
server = app.server
