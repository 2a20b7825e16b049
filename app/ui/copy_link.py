"""The navigation bar's "Copy link" button: every page keeps its view in the URL (see :mod:`app.ui.links` and
:func:`app.ui.page.register_url_sync`), so the address bar's URL is the link to share.

The copy runs in the browser (``explorer.copyLink`` in ``assets/explorer.js``, a clientside callback: no inline
script, so it works under the Content-Security-Policy): the Clipboard API where the browser offers it (HTTPS or
localhost), else the URL is put in a scratch text field, selected and copied with ``execCommand``; when even that
is refused, the link is shown in a text field for the user to copy.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

COPY_LINK = "copy-link"
COPY_LINK_FEEDBACK = "copy-link-feedback"
# Holds the last copied link; shown only when the browser refuses to copy it.
COPY_LINK_FIELD = "copy-link-field"
HIDDEN = "visually-hidden"


def copy_link_control() -> html.Div:
    """The button, its feedback ("Link copied", shown briefly) and the field that shows the link when the browser
    refuses to copy it."""
    return html.Div(
        [
            dbc.Button("Copy link", id=COPY_LINK, color="light", outline=True, size="sm",
                       title="Copy the link to this view"),
            html.Span(id=COPY_LINK_FEEDBACK, className="text-light small ms-2", role="status"),
            dcc.Input(id=COPY_LINK_FIELD, type="text", readOnly=True, className=HIDDEN, size="40"),
        ],
        className="d-flex align-items-center ms-auto me-3",
    )


def register_copy_link() -> None:
    """Wire the button to ``explorer.copyLink`` (call once, when the app is built)."""
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="copyLink"),
        Output(COPY_LINK_FEEDBACK, "children"),
        Output(COPY_LINK_FIELD, "value"),
        Output(COPY_LINK_FIELD, "className"),
        Input(COPY_LINK, "n_clicks"),
        prevent_initial_call=True,
    )
