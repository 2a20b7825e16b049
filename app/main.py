"""The Dash shell: pages, navigation bar, JSON API blueprint and login (:mod:`app.auth`). ``server`` is the WSGI app."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import html
from flask import jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from app import auth, services
from app.api import api
from app.core.limits import json_safe
from app.ui.navigation import navbar
from app.ui.training_form import FORM_MESSAGE

APP_DIR = Path(__file__).resolve().parent
ASSETS_DIR = APP_DIR.parent / "assets"
TITLE = "CNN Activation Explorer"
# Component ids whose callbacks write: every callback that changes something (start, stop, change the probe)
# reports in the training form's message area. A new write callback must write one of these (tests check it).
WRITE_CALLBACK_OUTPUTS = frozenset({FORM_MESSAGE})

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


def refuse_malformed_callback(error: Exception):
    """A request to Dash's callback route that Dash itself cannot dispatch (a hand-made body, not a browser's) is
    a 400, not a 500; an HTTP error under ``/api/`` that no API route caught (a path Flask cannot route at all) is
    JSON like every API answer; on every other route an unexpected error stays a logged 500."""
    if isinstance(error, HTTPException):
        if request.path.startswith("/api/"):
            return jsonify(error=error.description), error.code
        return error
    if request.path == "/_dash-update-component":
        return jsonify(error=f"malformed callback request ({type(error).__name__})"), 400
    logger.exception("unexpected error in %s", request.path)
    return jsonify(error=f"internal error: {type(error).__name__}"), 500


# Sent with every response: no MIME sniffing, no framing by other sites (clickjacking), no full URLs (which carry
# the view's state) leaked to other origins.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response):
    """``after_request``: the :data:`SECURITY_HEADERS` on every answer, 401s and errors included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app() -> dash.Dash:
    """Build the Dash app from the environment's settings (see :mod:`app.config`)."""
    settings = services.settings()
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
    server = app.server
    server.json = StrictJSONProvider(server)
    # Checked from Content-Length before a body is read; larger bodies get 413.
    server.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    server.register_error_handler(Exception, refuse_malformed_callback)
    server.after_request(add_security_headers)
    server.register_blueprint(api)
    auth.install(server, services.settings, callback_endpoint=app.config.routes_pathname_prefix
                 + "_dash-update-component", write_outputs=WRITE_CALLBACK_OUTPUTS, realm=TITLE)
    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
server = app.server
