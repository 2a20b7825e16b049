"""Models page: every model of the store with its status; an editor's upload and deletion; a model's compatibility
report (``/models?model=<name>``: each layer, shown as a map grid, a node grid, or not, and why).

Uploads go from the browser straight to ``POST /api/models`` (see :mod:`app.ui.model_admin`); deletion asks for
confirmation, then calls the store. Viewers and read-only instances see the list and the reports only, and the
server refuses their writes whatever the browser sends.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from app.auth.gate import write_refusal
from app.context import app_context
from app.core.errors import ExplorerError
from app.ui.components import error_alert, info_alert
from app.ui.inputs import name as checked_name
from app.ui.inputs import shown
from app.ui.model_admin import (
    CONFIRM,
    DELETE_BUTTON,
    DELETE_MESSAGE,
    PENDING,
    UPLOAD_DATASET,
    UPLOAD_MESSAGE,
    UPLOAD_MODEL,
    UPLOAD_NAME,
    UPLOAD_SUBMIT,
    UPLOAD_TEST_SET,
    model_table,
    report_table,
    upload_form,
)
from app.views.models import ModelsView, delete_model

dash.register_page(__name__, path="/models", name="Models", title="Models · CNN Activation Explorer", nav_order=5)

TABLE = "models-table"
REPORT = "models-report"
REPORT_CARD = "models-report-card"


def _report(model_name: str | None, added: bool) -> list:
    if not model_name:
        return []
    try:
        loaded = app_context().store.get(checked_name(model_name, "model"))
    except ExplorerError as exc:
        return [error_alert(f"No report for {shown(model_name)}: {exc}")]
    rows = [verdict.as_dict() for verdict in loaded.engine.verdicts]
    n_shown = sum(1 for row in rows if row["shown_as"])
    heading = [
        html.H5(f"Compatibility report · {loaded.name}", className="card-title"),
        html.P(f"{n_shown} of {len(rows)} layers are shown; {loaded.engine.n_images} test images, "
               f"{len(loaded.class_names)} classes.", className="mb-1"),
        *[html.P(note, className="small text-muted mb-1") for note in loaded.notes],
        dcc.Link("Open in Explore", href=f"/?model={loaded.name}", className="btn btn-sm btn-outline-primary mb-2"),
    ]
    if added:
        heading.insert(0, info_alert(f"Model {loaded.name!r} passed every check and is in the store."))
    return [dbc.Card(dbc.CardBody([*heading, report_table(rows)]), className="mb-3", id="models-report-card")]


QUERY_KEYS = ModelsView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The model list, the upload form (editors), and the report of ``?model=`` if given
    (:meth:`ModelsView.from_query`)."""
    view, _ = ModelsView.from_query(query)
    settings = app_context().settings
    refusal = write_refusal()
    may_write = refusal is None
    adding = (
        dbc.Card(dbc.CardBody([html.H5("Add a model", className="card-title"), upload_form(settings.max_upload_bytes)]),
                 className="mb-3")
        if may_write else dbc.Alert(refusal, color="secondary", id="models-read-only")
    )
    return html.Div(
        [
            html.Div(_report(view.model, view.added), id=REPORT),
            dbc.Card(dbc.CardBody([html.H5("Models in the store", className="card-title"),
                                   html.Div(model_table(app_context().store.entries(), may_write), id=TABLE)]),
                     className="mb-3"),
            adding,
            html.Div(id=DELETE_MESSAGE),
            dcc.ConfirmDialog(id=CONFIRM),
            dcc.Store(id=PENDING),
        ]
    )


@callback(
    Output(CONFIRM, "message"),
    Output(CONFIRM, "displayed"),
    Output(PENDING, "data"),
    Input({"type": DELETE_BUTTON, "name": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def ask_to_delete(clicks):
    """Ask before deleting: which model, and that it cannot be undone."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        return no_update, no_update, no_update
    model_name = trigger.get("name")
    return (f"Delete the model {model_name!r} and its test set from the store? This cannot be undone.", True,
            model_name)


@callback(
    Output(TABLE, "children"),
    Output(REPORT, "children"),
    Output(DELETE_MESSAGE, "children"),
    Input(CONFIRM, "submit_n_clicks"),
    State(PENDING, "data"),
    prevent_initial_call=True,
)
def delete_confirmed(_submitted, model_name):
    """Delete the model the user confirmed, then redraw the list (an editor's write: the gate refuses others)."""
    if refusal := write_refusal():
        return no_update, no_update, error_alert(refusal)
    try:
        deleted = checked_name(model_name, "model")
        delete_model(app_context().store, app_context().statistics_jobs, deleted)
    except ExplorerError as exc:
        return model_table(app_context().store.entries(), True), no_update, error_alert(exc)
    return model_table(app_context().store.entries(), True), [], info_alert(f"Model {deleted!r} deleted.")


clientside_callback(
    ClientsideFunction(namespace="models", function_name="uploadModel"),
    Output(UPLOAD_MESSAGE, "children"),
    Input(UPLOAD_SUBMIT, "n_clicks"),
    State(UPLOAD_NAME, "value"),
    State(UPLOAD_DATASET, "value"),
    State(UPLOAD_MODEL, "contents"),
    State(UPLOAD_MODEL, "filename"),
    State(UPLOAD_TEST_SET, "contents"),
    State(UPLOAD_TEST_SET, "filename"),
    prevent_initial_call=True,
)


@callback(
    Output(f"{UPLOAD_MODEL}-name", "children"),
    Input(UPLOAD_MODEL, "filename"),
    prevent_initial_call=True,
)
def show_model_file(filename):
    """The chosen model file's name in its picker."""
    return filename[:80] if isinstance(filename, str) else no_update


@callback(
    Output(f"{UPLOAD_TEST_SET}-name", "children"),
    Input(UPLOAD_TEST_SET, "filename"),
    prevent_initial_call=True,
)
def show_test_set_file(filename):
    """The chosen test set's name in its picker."""
    return filename[:80] if isinstance(filename, str) else no_update
