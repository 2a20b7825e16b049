"""The pieces of the Models page: the list of models, the upload form and the compatibility report.

The upload form's files stay in the browser until a clientside function (``assets/model_upload.js``) posts them
straight to ``POST /api/models`` with progress and shows the answer: a model file can be far larger than a callback
request may be, and the API route applies the upload limit only there.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.core.datasets import NAMED_DATASETS
from app.core.limits import format_bytes
from app.core.store import ModelEntry
from app.views.models import ModelsView

UPLOAD_FORM = "model-upload-form"
UPLOAD_NAME = "model-upload-name"
UPLOAD_MODEL = "model-upload-model"
UPLOAD_DATASET = "model-upload-dataset"
UPLOAD_TEST_SET = "model-upload-test-set"
UPLOAD_SUBMIT = "model-upload-submit"
UPLOAD_MESSAGE = "model-upload-message"
# Every deletion reports here; the login gate treats a callback writing it as a write (editors only).
DELETE_MESSAGE = "models-delete-message"
DELETE_BUTTON = "models-delete"
CONFIRM = "models-confirm-delete"
PENDING = "models-pending-delete"
ROW = "models-row"  # a model's row of the table: f"{ROW}-{name}"
REPORT_TABLE = "models-report-table"
SHOWN_AS = {"maps": "map grid", "nodes": "node grid", None: "not shown"}


def _accuracy(entry: ModelEntry) -> str:
    accuracy = entry.meta.get("metrics", {}).get("test_accuracy")
    return f"{accuracy:.1%}" if isinstance(accuracy, int | float) else "–"


def model_table(entries: list[ModelEntry], may_write: bool) -> dbc.Table:
    """Every model of the store: status (with a broken model's reason), accuracy, where it came from, links to
    explore it and to its report, and (for editors) a delete button."""
    header = ["Model", "Status", "Test accuracy", "From", "", ""] + ([""] if may_write else [])
    rows = []
    for entry in entries:
        origin = entry.meta.get("uploaded_by") and f"uploaded by {entry.meta['uploaded_by']}"
        origin = origin or (entry.meta.get("job_id") and "trained here") or entry.meta.get("source") or ""
        status = (dbc.Badge("ok", color="success") if entry.ok
                  else html.Span([dbc.Badge("broken", color="danger", className="me-1"),
                                  html.Small(entry.reason[:300], className="text-muted")]))
        cells = [
            html.Td(html.Strong(entry.name)),
            html.Td(status),
            html.Td(_accuracy(entry)),
            html.Td(html.Small(origin)),
            html.Td(dcc.Link("Explore", href=f"/?model={entry.name}") if entry.ok else ""),
            html.Td(dcc.Link("Report", href="/models" + ModelsView(entry.name).to_query()) if entry.ok else ""),
        ]
        if may_write:
            cells.append(html.Td(dbc.Button("Delete", id={"type": DELETE_BUTTON, "name": entry.name},
                                            color="outline-danger", size="sm")))
        rows.append(html.Tr(cells, id=f"models-row-{entry.name}"))
    return dbc.Table([html.Thead(html.Tr([html.Th(text) for text in header])), html.Tbody(rows)],
                     size="sm", hover=True, responsive=True, className="mb-0")


def _file_picker(picker_id: str, prompt: str, accept: str, max_bytes: int) -> dcc.Upload:
    return dcc.Upload(
        id=picker_id,
        children=html.Div([html.Span(prompt, id=f"{picker_id}-name"), " ", html.Small("(drop or click)",
                                                                                  className="text-muted")]),
        accept=accept,
        max_size=max_bytes,
        className="form-control text-truncate",
        style={"cursor": "pointer"},
    )


def upload_form(max_upload_bytes: int) -> html.Div:
    """The upload form: a name, a model file (.keras, .h5 or a .zip of a model folder), and a test set (.npz) or a
    built-in dataset. The files stay in the browser until "Upload and check" posts them to ``POST /api/models``."""
    dataset_options = [{"label": "an .npz file (right)", "value": ""}] + [
        {"label": f"{name} (its test split)", "value": name} for name in NAMED_DATASETS
    ]
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col([dbc.Label("Name", html_for=UPLOAD_NAME, className="small text-muted mb-0"),
                             dbc.Input(id=UPLOAD_NAME, maxLength=64, placeholder="my-cnn")], md=3),
                    dbc.Col([dbc.Label("Model file (.keras, .h5, .zip)", className="small text-muted mb-0"),
                             _file_picker(UPLOAD_MODEL, "choose a model file", ".keras,.h5,.hdf5,.zip",
                                          max_upload_bytes)], md=3),
                    dbc.Col([dbc.Label("Test set", className="small text-muted mb-0"),
                             dcc.Dropdown(id=UPLOAD_DATASET, options=dataset_options, value="", clearable=False)],
                            md=3),
                    dbc.Col([dbc.Label(".npz with images and labels", className="small text-muted mb-0"),
                             _file_picker(UPLOAD_TEST_SET, "choose a test set", ".npz", max_upload_bytes)], md=3),
                ],
                className="g-2 mb-2",
            ),
            dbc.Button("Upload and check", id=UPLOAD_SUBMIT, color="primary", size="sm"),
            html.Small(f" Up to {format_bytes(max_upload_bytes)} a file. The model loads in Keras safe mode (no code "
                       "from Lambda layers); nothing is stored unless every check passes.", className="text-muted"),
            html.Div(id=UPLOAD_MESSAGE, className="mt-2", role="status"),
        ],
        id=UPLOAD_FORM,
    )


def report_table(rows: list[dict]) -> dbc.Table:
    """The compatibility report: each layer, its output shape, how it is shown and, if not, why."""
    body = []
    for row in rows:
        shape = "×".join(str(d) for d in row["output_shape"]) if row["output_shape"] is not None else "–"
        shown = SHOWN_AS[row["shown_as"]]
        body.append(html.Tr([
            html.Td(row["name"]), html.Td(row["type"]), html.Td(shape),
            html.Td(dbc.Badge(shown, color="success" if row["shown_as"] else "secondary")),
            html.Td(html.Small(row["reason"] or ""), className="text-muted"),
        ]))
    header = html.Thead(html.Tr([html.Th(text) for text in ("Layer", "Type", "Output", "Shown as", "Why not")]))
    return dbc.Table([header, html.Tbody(body)], size="sm", responsive=True, id="models-report-table")
