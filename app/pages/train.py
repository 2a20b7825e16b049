"""Training page: configure the blog's CNN, run it as a background job, watch it learn live, open the result.

Everything shown comes from the shared job store (:mod:`app.jobs`), read by a 0.5 s ``dcc.Interval``: every open
window, in any web worker, sees the current run, not only the one that started it. ``/train?job=<id>`` pins the
view to one job. Callbacks only unpack inputs, call the job runner, store, form parser and figure builders, and
return.
"""

from __future__ import annotations

import time

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from app.auth.gate import current_user_name, write_refusal
from app.context import app_context
from app.core.errors import ExplorerError, InvalidInput
from app.core.grid import tile
from app.core.training import ConfigError, is_partial
from app.figures.charts import input_image_figure, probability_bars
from app.figures.grids import activation_heatmap
from app.figures.training import learning_rate_curve, training_curves
from app.ui import inputs
from app.ui.components import SMALL_CHART, TOOLBAR, error_alert, info_alert
from app.ui.links import explorer_link, job_link
from app.ui.training_form import (
    FIELD,
    FORM_MESSAGE,
    PROBE_NOW,
    SAVE_PARTIAL,
    START,
    STOP,
    choices,
    settings_list,
    training_form,
)
from app.views.train import TrainView
from app.views.train_form import (
    OPTIONAL_NUMBERS,
    REQUIRED_NUMBERS,
    JobNotFound,
    JobRunning,
    check_form,
    default_form,
    field_of,
    form_from_config,
    probe_image_value,
    probe_layer_options,
)

dash.register_page(__name__, path="/train", name="Train", title="Train · CNN Activation Explorer", nav_order=4)

INTERVAL = "train-interval"
PIN = "train-pin"
VIEW = "train-view"
STATUS = "train-status"
BADGE = "train-badge"  # the shown job's status, in the status line
PROGRESS = "train-progress"
PROGRESS_TEXT = "train-progress-text"
RESULT = "train-result"
EXPLORE_LINK = "train-explore-link"  # in the result of a saved model
CURVES = "train-curves"
LEARNING_RATE = "train-lr-curve"
PROBE_SLIDER = "train-probe-slider"
PROBE_HEATMAP = "train-probe-heatmap"
PROBE_INPUT = "train-probe-input"
PROBE_PROBABILITIES = "train-probe-probabilities"
PROBE_INFO = "train-probe-info"
JOBS_TABLE = "train-jobs"
SETTINGS = "train-settings"  # the shown job's settings, read-only
RERUN = "train-rerun"
RERUN_BOX = "train-rerun-box"  # shows the button only for an ended job (a dbc.Button has no hidden property)
RERUN_NOTE = "train-rerun-note"
READ_ONLY = "train-read-only"  # the note shown instead of the form to those who may not train
BANNER_JOB = "train-banner-job"  # the id of the job the form's banner talks about (None: about no job)
POLL_MS = 500  # with the two callbacks after it and the redraw, an epoch reaches every page well within 2 s

NUMBER_FIELDS = frozenset(REQUIRED_NUMBERS + OPTIONAL_NUMBERS)  # number inputs; the other fields hold text
# the fields that can show themselves invalid (a dcc.Dropdown, the probe layer, has no such property)
MARKABLE = tuple(key for key in FIELD if key != "probe_layer")

STATUS_COLORS = {"queued": "secondary", "running": "primary", "succeeded": "success", "failed": "danger",
                 "stopped": "warning"}


QUERY_KEYS = TrainView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page (:meth:`TrainView.from_query`); ``?job=<id>`` shows that job instead of following the current one,
    ``?probe=`` fills the form's watched image (a test-image number or a drawn or uploaded image's ``u:`` id;
    anything else is left out)."""
    view, _ = TrainView.from_query(query)
    values = default_form()
    values["name"] = app_context().store.free_name(values["name"])
    if view.probe is not None:
        values["probe_image"] = view.probe
    job = view.job
    form = training_form(values)
    refusal = write_refusal()
    # Run again fills the form: offered only to those who have one. Always in the page (its callbacks need the id).
    rerun = html.Div([
        html.Span(dbc.Button("Run again with these settings", id=RERUN, color="secondary", outline=True, size="sm",
                             className="mt-2", title="copy this job's settings into the form"),
                  id=RERUN_BOX, hidden=True),
        html.Span(id=RERUN_NOTE, className="small text-muted ms-2"),
    ], hidden=bool(refusal))
    settings = dbc.Card(dbc.CardBody([html.Div(id=SETTINGS), rerun]), className="mb-3")
    if refusal:  # a viewer or a read-only instance: a note; the hidden form keeps the callbacks' ids
        form = [dbc.Alert(refusal, color="secondary", id="train-read-only"), settings, html.Div(form, hidden=True)]
    else:
        form = [form, settings]
    watch = dbc.Card(
        dbc.CardBody(
            [
                html.Div(id=STATUS, className="mb-2"),
                dbc.Progress(id=PROGRESS, value=0, striped=True, animated=False, style={"height": "20px"},
                             className="mb-1"),
                html.Div(id=PROGRESS_TEXT, className="small text-muted mb-2"),
                html.Div(id=RESULT),
            ]
        ),
        className="mb-3",
    )
    probe = dbc.Card(
        dbc.CardBody(
            [
                html.H6("The probe image through the epochs", className="card-title"),
                html.Div(id=PROBE_INFO, className="small text-muted"),
                dcc.Slider(id=PROBE_SLIDER, min=1, max=1, step=1, value=None, marks=None,
                           tooltip={"placement": "bottom", "always_visible": False}),
                dbc.Row(
                    [
                        dbc.Col(dcc.Graph(id=PROBE_HEATMAP, style={"height": "420px"},
                                          config=TOOLBAR), md=8),
                        dbc.Col(
                            [
                                dcc.Graph(id=PROBE_INPUT, style={"height": "200px"}, config=SMALL_CHART),
                                dcc.Graph(id=PROBE_PROBABILITIES, style={"height": "220px"}, config=SMALL_CHART),
                            ],
                            md=4,
                        ),
                    ]
                ),
            ]
        ),
        className="mb-3",
    )
    # Three areas (assets/layout.css): wide, the form in a left column beside the run and its charts; narrow, the
    # run's status first (a run in progress is what a returning user looks for), then the form, then the charts.
    return html.Div(
        [
            html.Div(
                [
                    html.Div(form, className="train-form"),
                    html.Div(watch, className="train-watch"),
                    html.Div(
                        [
                            dbc.Card(dbc.CardBody([
                                dcc.Graph(id=CURVES, style={"height": "360px"}, config=TOOLBAR),
                                dcc.Graph(id=LEARNING_RATE, style={"height": "260px"}, config=TOOLBAR),
                            ]), className="mb-3"),
                            probe,
                            html.H6("Recent jobs"),
                            html.Div(id=JOBS_TABLE),
                        ],
                        className="train-charts",
                    ),
                ],
                className="train-areas",
            ),
            dcc.Interval(id=INTERVAL, interval=POLL_MS),
            dcc.Store(id=PIN, data=job),
            dcc.Store(id=VIEW),
            dcc.Store(id=BANNER_JOB),
        ]
    )


def _form_values(args) -> dict:
    return dict(zip(FIELD, args, strict=True))


def _type_problems(values: dict) -> dict[str, str]:
    """What the form's own checks cannot read, by field: a number field that is not a number, a text field or a
    choice that is not text (or is longer than a person types). None is a blank field, which those checks report."""
    problems = {}
    for key, value in values.items():
        label = key.replace("_", " ")
        try:
            if key in NUMBER_FIELDS:
                if value is not None and value != "":
                    inputs.number(value, label)
            elif key == "probe_image":  # a number (as the form is first filled) or text (a number or u:<id>)
                if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                    inputs.text(value, label, 40)
            elif value is not None:
                inputs.text(value, label)
        except InvalidInput as exc:
            problems[key] = str(exc)
    return problems


def _fix_these(problems: list[str]) -> dbc.Alert:
    return dbc.Alert([html.B("Please fix: "), html.Ul([html.Li(e) for e in problems], className="mb-0")],
                     color="warning", className="py-2")


@callback(
    Output(FIELD["probe_layer"], "options"),
    Output(FIELD["probe_layer"], "value"),
    Input(FIELD["filters"], "value"),
    Input(FIELD["pool_size"], "value"),
    Input(FIELD["dense_units"], "value"),
    State(FIELD["probe_layer"], "value"),
    prevent_initial_call=True,
)
def on_architecture_change(filters, pool_size, dense_units, current):
    """The probe layer can be chosen before the model exists: the names follow from the architecture."""
    values = {"filters": filters, "pool_size": pool_size, "dense_units": dense_units}
    if _type_problems(values):
        return no_update, no_update  # the start button's check names the field
    names = probe_layer_options(filters, pool_size, dense_units)
    return choices(names), current if current in names else names[0]


@callback(
    Output(FORM_MESSAGE, "children"),
    Output(PIN, "data"),
    Output(BANNER_JOB, "data"),
    *(Output(FIELD[key], "invalid") for key in MARKABLE),
    Input(START, "n_clicks"),
    [State(field_id, "value") for field_id in FIELD.values()],
    prevent_initial_call=True,
)
def on_start(_clicks, *field_values):
    """Check the form and start the job: every problem is listed at once and its field marked, or the refusal is
    shown."""
    values = _form_values(field_values)
    unreadable = _type_problems(values)
    readable = {key: None if key in unreadable else value for key, value in values.items()}
    check = check_form(readable, skip=frozenset(unreadable))
    problems = [*unreadable.items(), *check.problems]
    if problems:
        return _fix_these([message for _key, message in problems]), no_update, None, *_marks(problems)
    try:
        job = app_context().job_runner.start(check.raw, started_by=current_user_name())
    except JobRunning as exc:  # about the running job: goes when that job ends
        return error_alert(exc), no_update, exc.job.id, *_marks([])
    except ConfigError as exc:  # what only the runner knows: a dataset path outside the data folder
        problems = [(field_of(message, values), message) for message in exc.errors]
        return _fix_these(exc.errors), no_update, None, *_marks(problems)
    except ExplorerError as exc:
        return error_alert(exc), no_update, None, *_marks([])
    # follow the current job again (a pinned page would otherwise keep showing the old one)
    return info_alert(f"Job {job.id} started: training {job.model!r}."), None, job.id, *_marks([])


def _marks(problems: list[tuple[str | None, str]]) -> list[bool]:
    """The ``invalid`` flag of every markable field: True for those a problem names."""
    named = {key for key, _message in problems}
    return [key in named for key in MARKABLE]


@callback(
    Output(FORM_MESSAGE, "children", allow_duplicate=True),
    Output(BANNER_JOB, "data", allow_duplicate=True),
    Input(STOP, "n_clicks"),
    State(VIEW, "data"),
    State(SAVE_PARTIAL, "value"),
    prevent_initial_call=True,
)
def on_stop(_clicks, view, save_partial):
    """Ask the shown job to stop at its next batch (keeping the partial model if the switch is on)."""
    view = inputs.job_view(view)
    if view is None:
        return error_alert("No job to stop."), None
    save_partial = inputs.flag(save_partial)
    try:
        job = app_context().job_runner.stop(view["job"], save_partial)
    except ExplorerError as exc:
        return error_alert(exc), None
    kept = " The partial model will be saved." if save_partial else ""
    return info_alert(f"Stopping job {job.id} at the next batch.{kept}"), job.id


@callback(
    Output(FORM_MESSAGE, "children", allow_duplicate=True),
    Output(BANNER_JOB, "data", allow_duplicate=True),
    Input(PROBE_NOW, "n_clicks"),
    State(FIELD["probe_image"], "value"),
    State(FIELD["probe_layer"], "value"),
    State(VIEW, "data"),
    prevent_initial_call=True,
)
def on_probe_now(_clicks, image, layer, view):
    """Switch the running job's probe to the form's test image and layer from its next epoch on."""
    view = inputs.job_view(view)
    if view is None:
        return error_alert("No running job."), None
    try:
        if isinstance(image, str):  # the field is text: a number or a drawn or uploaded image's u:<id>
            image = probe_image_value(inputs.text(image, "the test image", 40))
        else:
            image = inputs.optional_integer(image, "the test image", 0)
        layer = None if layer is None else inputs.name(layer, "layer")
        job = app_context().job_runner.change_probe(view["job"], image, layer)
    except ExplorerError as exc:
        return error_alert(exc), None
    request = job.probe_request
    return info_alert(f"From the next epoch on, job {job.id} records {_image_name(request['image'])} at "
                      f"{request['layer']}."), job.id


def _image_name(image) -> str:
    """``test image 3``, or ``your image u:…`` for a drawn or uploaded one."""
    return f"your image {image}" if isinstance(image, str) else f"test image {image}"


# In the browser, not on the server: the banner is a write callback's output (viewers may not call those), and
# clearing it needs nothing but the shown job's status, which every page already holds in VIEW.
clientside_callback(
    ClientsideFunction(namespace="training", function_name="clearEndedBanner"),
    Output(FORM_MESSAGE, "children", allow_duplicate=True),
    Output(BANNER_JOB, "data", allow_duplicate=True),
    Input(VIEW, "data"),
    State(BANNER_JOB, "data"),
    prevent_initial_call=True,
)


def _duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _epochs(count) -> str:
    """``1 epoch``, ``3 epochs``."""
    return f"{count} epoch{'' if count == 1 else 's'}"


def _status_line(job) -> list:
    config = job.config
    summary = (f"{config.get('dataset')} · {_epochs(config.get('epochs'))} · {config.get('optimizer')} · "
               f"batch {config.get('batch_size')}")
    return [
        dbc.Badge(job.status, color=STATUS_COLORS.get(job.status, "secondary"), className="me-2", id="train-badge"),
        html.B(job.model, className="me-2"),
        html.Span(f"job {job.id} · {job.engine}{f' · started by {job.started_by}' if job.started_by else ''} · "
                  f"{summary} · elapsed {_duration(job.elapsed_seconds)}",
                  className="small text-muted"),
    ]


def _preparing(job) -> str | None:
    """What a running job does before its first batch, read from what the worker has stored so far (it stores the
    class names once the data is loaded, the run's size once the model is built); None once batches are done."""
    if job.status == "queued":
        return "waiting for a worker…"
    if not job.active or job.batches_done:
        return None
    if not job.info.get("class_names"):
        return "loading data…"
    if not job.batches_total:
        return "building the model…"
    return "preparing the first batch…"  # Keras traces and compiles the training step on its first call


def _progress(job, n_epochs: int) -> tuple[float, str, bool, str, str]:
    """The progress bar's value, label, animation and colour, and the line under it.

    Before the first batch the bar is full, striped and grey with what the worker is doing, instead of an empty
    0 % bar that looks stuck."""
    preparing = _preparing(job)
    if preparing is not None:
        return 100, preparing.rstrip("…"), True, "secondary", preparing
    percent = round(100 * job.fraction, 1)
    if not job.batches_total:  # ended before training began: the result card says why
        return percent, "", False, "primary", ""
    parts = [f"epoch {max(job.epoch, 1)}/{job.epochs_total}", f"batch {job.batch}/{job.batches_per_epoch}",
             f"{job.batches_done:,}/{job.batches_total:,} batches", f"{_epochs(n_epochs)} recorded"]
    if job.active and job.eta_seconds is not None:
        parts.append(f"ETA {_duration(job.eta_seconds)}")
    if job.stop_requested and job.active:
        parts.append("stopping…")
    return percent, f"{percent:.0f} %", job.active, "primary", " · ".join(parts)


def _result(job, stored: bool):
    """The result card of ``job``; ``stored``: whether its saved model is still in the store (a link to a deleted
    model would open an error)."""
    partial = " (partial)" if job.status == "stopped" else ""
    if job.saved and stored:
        return dbc.Alert(
            [f"Model {job.model!r} saved{partial}. ",
             dcc.Link(f"Open {job.model} in the explorer", href=explorer_link(job.model), id="train-explore-link")],
            color="success", className="py-2 mb-0",
        )
    if job.saved:
        return dbc.Alert(f"Model {job.model!r} was saved{partial}, then deleted from the store.",
                         color="secondary", className="py-2 mb-0")
    if job.status == "failed":
        return dbc.Alert(f"Failed: {job.error}", color="danger", className="py-2 mb-0")
    if job.status == "stopped":
        return dbc.Alert("Stopped; no model was saved.", color="warning", className="py-2 mb-0")
    warning = job.info.get("probe_warning")
    return dbc.Alert(warning, color="warning", className="py-2 mb-0") if warning else None


def _model_cell(job, stored: bool):
    """A job's model in the jobs table: a link to the explorer while the saved model is in the store."""
    if not job.saved:
        return job.model
    if not stored:
        return html.Span([job.model, html.Small(" (deleted)", className="text-muted")])
    return dcc.Link(job.model, href=explorer_link(job.model))


def _jobs_table(jobs, store) -> html.Table:
    rows = []
    for job in jobs:
        model = _model_cell(job, job.saved and store.holds(job.model))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created))
        rows.append(html.Tr([
            html.Td(dcc.Link(job.id, href=job_link(job.id))), html.Td(model),
            html.Td(dbc.Badge(job.status, color=STATUS_COLORS.get(job.status, "secondary"))),
            html.Td(started), html.Td(_duration(job.elapsed_seconds)), html.Td(job.started_by or "–"),
        ]))
    header = html.Thead(html.Tr([html.Th(h) for h in ("job", "model", "status", "created", "duration", "by")]))
    return dbc.Table([header, html.Tbody(rows)], size="sm", hover=True, className="small")


@callback(
    Output(STATUS, "children"),
    Output(PROGRESS, "value"),
    Output(PROGRESS, "label"),
    Output(PROGRESS, "animated"),
    Output(PROGRESS, "color"),
    Output(PROGRESS_TEXT, "children"),
    Output(RESULT, "children"),
    Output(STOP, "disabled"),
    Output(PROBE_NOW, "disabled"),
    Output(JOBS_TABLE, "children"),
    Output(VIEW, "data"),
    Input(INTERVAL, "n_intervals"),
    Input(PIN, "data"),
    State(VIEW, "data"),
)
def on_tick(_n, pinned, view):
    """Read the shown job from the shared store; the figures redraw only when its epoch records change."""
    store = app_context().job_store
    models = app_context().store
    if not pinned:
        job = store.current()
    else:
        wanted = inputs.job_id_or_none(pinned)  # a forged pin (a list, a path) names no job
        try:
            job = store.get(wanted) if wanted else None
        except JobNotFound:
            job = None
    jobs_table = _jobs_table(store.list(8), models)
    if job is None:
        # those who may not train are not told to start a run
        invitation = "" if write_refusal() else ": configure one and start it"
        idle = html.Span(f"No job {inputs.shown(pinned)}." if pinned else f"No training job yet{invitation}.",
                         className="text-muted")
        return idle, 0, "", False, "primary", "", None, True, True, jobs_table, None
    n_epochs = len(store.epochs(job.id))
    # whether the saved model is still there is part of the run's state: a deletion redraws the result card
    stored = job.saved and models.holds(job.model)
    signature = {"job": job.id, "epochs": n_epochs, "status": job.status, "total": job.epochs_total,
                 "stored": stored}
    changed = signature != view
    return (
        _status_line(job),
        *_progress(job, n_epochs),
        # redrawn only when the run's state changed: a link re-created every poll can lose the click on it
        _result(job, stored) if changed else no_update,
        not job.active,
        not job.active,
        jobs_table,
        signature if changed else no_update,
    )


def _curves_title(job_id: str, epochs: list[dict], total) -> str:
    """``"<job>: 4 of 20 epochs"``, and ``" + 25 % of epoch 5 (stopped)"`` when a stop cut that epoch short."""
    full = [row for row in epochs if not is_partial(row)]
    title = f"{job_id}: {len(full)} of {total or '?'} epochs"
    cut = next((row for row in epochs if is_partial(row)), None)
    if cut is not None:
        share = 100 * cut.get("batches", 0) / (cut.get("batches_per_epoch") or 1)
        title += f" + {share:.0f} % of epoch {cut['epoch']} (stopped)"
    return title


@callback(
    Output(CURVES, "figure"),
    Output(LEARNING_RATE, "figure"),
    Output(PROBE_SLIDER, "min"),
    Output(PROBE_SLIDER, "max"),
    Output(PROBE_SLIDER, "marks"),
    Output(PROBE_SLIDER, "value"),
    Input(VIEW, "data"),
    State(PROBE_SLIDER, "value"),
    State(PROBE_SLIDER, "max"),
)
def on_new_epochs(view, slider_value, slider_max):
    """Redraw the curves; the epoch slider follows the newest probe record unless the user moved it back."""
    view = inputs.job_view(view)
    if view is None:
        return training_curves([]), learning_rate_curve([]), 1, 1, None, None
    slider_value, slider_max = inputs.integer_or_none(slider_value), inputs.integer_or_none(slider_max)
    store = app_context().job_store
    epochs = store.epochs(view["job"])
    probe_epochs = store.probe_epochs(view["job"])
    title = _curves_title(view["job"], epochs, view["total"])
    curves = training_curves(epochs, view["total"], title)
    rate = learning_rate_curve(epochs, view["total"])
    if not probe_epochs:
        return curves, rate, 1, 1, None, None
    low, high = probe_epochs[0], probe_epochs[-1]
    follow = slider_value is None or slider_value == slider_max or not low <= slider_value <= high
    step = max(1, len(probe_epochs) // 10)
    marks = {epoch: str(epoch) for epoch in probe_epochs[::step]} | {high: str(high)}
    return curves, rate, low, high, marks, high if follow else slider_value


@callback(
    Output(PROBE_HEATMAP, "figure"),
    Output(PROBE_INPUT, "figure"),
    Output(PROBE_PROBABILITIES, "figure"),
    Output(PROBE_INFO, "children"),
    Input(PROBE_SLIDER, "value"),
    State(VIEW, "data"),
)
def on_probe_epoch(epoch, view):
    """The probe image's layer output and class probabilities after the chosen epoch."""
    empty = {"layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False}, "margin": {"l": 0, "r": 0}}}
    view = inputs.job_view(view)
    if view is None or epoch is None:
        return empty, empty, empty, "Choose a test image and a layer before starting; a grid appears after epoch 1."
    try:
        epoch = inputs.integer(epoch, "the epoch", 1)
        store = app_context().job_store
        probe = store.probe(view["job"], epoch)
        if probe is None:
            return no_update, no_update, no_update, f"No probe record for epoch {epoch}."
        job = store.get(view["job"])
    except ExplorerError as exc:
        return no_update, no_update, no_update, str(exc)
    names = job.info.get("class_names") or [str(i) for i in range(len(probe["probabilities"]))]
    # the picture of the image this record is of (a viewer may have switched images during the run)
    info = job.info.get("probe_images", {}).get(str(probe["image"])) or {}
    grid, grid_layout = tile(probe["activations"])
    shown_as = _image_name(probe["image"])
    heatmap = activation_heatmap(grid, grid_layout, "viridis",
                                 title=f"{probe['layer']} of {shown_as} after epoch {epoch}")
    pixels = np.asarray(info.get("pixels", []), dtype=np.float32)
    label = info.get("label")
    image = (input_image_figure(pixels, shown_as + (f" · {names[label]}" if label is not None else ""))
             if pixels.ndim == 3 else empty)
    return (heatmap, image, probability_bars(probe["probabilities"], names, label),
            f"epoch {epoch} of {job.epochs_total}: {probe['layer']} · {probe['activations'].shape}")



@callback(
    Output(SETTINGS, "children"),
    Output(RERUN_BOX, "hidden"),
    Input(VIEW, "data"),
)
def on_view_settings(view):
    """The shown job's own settings, read-only and labelled with the job (never the form's editable defaults),
    and, once it has ended, the button that copies them into the form."""
    view = inputs.job_view(view)
    if view is None:
        return html.Span("The settings of a job appear here once one runs.", className="small text-muted"), True
    try:
        job = app_context().job_store.get(view["job"])
        values = form_from_config(job.config)
    except ExplorerError as exc:
        return html.Span(str(exc), className="small text-muted"), True
    heading = html.H6([f"Settings of job {job.id} ", dbc.Badge("read-only", color="light", text_color="dark")],
                      className="card-title")
    return [heading, settings_list(values)], job.active


@callback(
    *(Output(field_id, "value", allow_duplicate=True) for field_id in FIELD.values()),
    *(Output(FIELD[key], "invalid", allow_duplicate=True) for key in MARKABLE),
    Output(RERUN_NOTE, "children"),
    Input(RERUN, "n_clicks"),
    State(VIEW, "data"),
    prevent_initial_call=True,
)
def on_rerun(_clicks, view):
    """Fill the form with the shown job's settings, under a model name not yet taken; nothing starts until the
    user presses Start."""
    keep = (no_update,) * (len(FIELD) + len(MARKABLE))
    view = inputs.job_view(view)
    if view is None:
        return *keep, "No job shown."
    try:
        job = app_context().job_store.get(view["job"])
        values = form_from_config(job.config)
    except ExplorerError as exc:
        return *keep, str(exc)
    values["name"] = app_context().store.free_name(values["name"])
    return (*(values[key] for key in FIELD), *(False for _key in MARKABLE),
            f"The form now holds job {job.id}'s settings, as {values['name']!r}: press Start training to run them.")
