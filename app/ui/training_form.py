"""The training page's configuration form: the blog's run as fields, grouped like the blog describes it.

Component ids are ``"train-" + key`` of :func:`app.views.train_form.default_form` (``_`` as ``-``), in :data:`FIELD`;
the page's callbacks read the fields in that order.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.core.training import ACTIVATIONS, OPTIMIZERS, REGULARIZERS, SCHEDULES
from app.ui.components import labelled
from app.views.train_form import NAMED_DATASETS, default_form, probe_layer_options

FIELD = {key: "train-" + key.replace("_", "-") for key in default_form()}
START = "train-start"
STOP = "train-stop"
SAVE_PARTIAL = "train-save-partial"
FORM_MESSAGE = "train-form-message"
PROBE_NOW = "train-probe-now"

# The settings as a read-only list (a job's, on the page of everyone who watches it): the form's labels, in its order.
SETTING_LABELS = {
    "name": "Model name", "epochs": "Epochs", "dataset": "Dataset", "dataset_path": "Dataset file",
    "filters": "Filters per conv layer", "kernels": "Kernel size(s)", "conv_activation": "Conv activation",
    "pool_size": "Max pooling", "dense_units": "Hidden units", "dense_activation": "Dense activation",
    "regularizer": "Regularizer", "regularizer_factor": "Factor", "optimizer": "Optimizer",
    "momentum": "Momentum", "lr_schedule": "LR schedule", "learning_rate": "Initial rate",
    "decay_steps": "Decay steps", "decay_rate": "Decay rate", "batch_size": "Batch size",
    "max_train": "Max train images", "max_test": "Max test images", "seed": "Seed", "probe_image": "Test image",
    "probe_layer": "Probe layer",
}


def choices(values) -> list[dict]:
    return [{"label": value, "value": value} for value in values]


def _number(key: str, value, placeholder=None) -> dbc.Input:
    # no min/max/integer step: the browser would silently send None for such a number; the server's check
    # names the field and its bounds instead
    return dbc.Input(id=FIELD[key], type="number", value=value, step="any", placeholder=placeholder, size="sm")


def _select(key: str, options, value) -> dbc.Select:
    return dbc.Select(id=FIELD[key], options=options, value=value, size="sm")


def _text(key: str, value, placeholder=None) -> dbc.Input:
    return dbc.Input(id=FIELD[key], type="text", value=value, placeholder=placeholder, size="sm")


def training_form(values: dict) -> dbc.Card:
    """The configuration form, filled with ``values`` (keys of :func:`default_form`)."""
    row = lambda *cols: dbc.Row(list(cols), className="g-2")  # noqa: E731 - a local shorthand for the layout
    layers = probe_layer_options(values["filters"], values["pool_size"], values["dense_units"])
    body = [
        row(labelled("Model name", _text("name", values["name"]), 7),
            labelled("Epochs", _number("epochs", values["epochs"]), 5)),
        row(labelled("Dataset", _select("dataset", [{"label": v, "value": k} for k, v in NAMED_DATASETS.items()],
                                           values["dataset"]), 12)),
        row(labelled("…or a file in the server's data folder (.npz or IDX folder)",
                        _text("dataset_path", values["dataset_path"], "my-digits.npz"), 12)),
        html.H6("Convolution", className="mt-2 mb-1"),
        row(labelled("Filters per conv layer", _text("filters", values["filters"], "32, 64, 128"), 5),
            labelled("Kernel size(s)", _text("kernels", values["kernels"], "3"), 3),
            labelled("Activation", _select("conv_activation", choices(ACTIVATIONS), values["conv_activation"]), 4)),
        row(labelled("Max pooling (0 = none)", _number("pool_size", values["pool_size"]), 5)),
        html.H6("Dense layers", className="mt-2 mb-1"),
        row(labelled("Hidden units (blank = none)", _text("dense_units", values["dense_units"], "100"), 7),
            labelled("Activation", _select("dense_activation", choices(ACTIVATIONS),
                                              values["dense_activation"]), 5)),
        row(labelled("Regularizer", _select("regularizer", choices(REGULARIZERS), values["regularizer"]), 6),
            labelled("Factor", _number("regularizer_factor", values["regularizer_factor"]), 6)),
        html.H6("Optimizer", className="mt-2 mb-1"),
        row(labelled("Optimizer", _select("optimizer", choices(OPTIMIZERS), values["optimizer"]), 6),
            labelled("Momentum (RMSprop, SGD)", _number("momentum", values["momentum"]), 6)),
        row(labelled("LR schedule", _select("lr_schedule", choices(SCHEDULES), values["lr_schedule"]), 6),
            labelled("Initial rate", _number("learning_rate", values["learning_rate"]), 6)),
        row(labelled("Decay steps", _number("decay_steps", values["decay_steps"]), 6),
            labelled("Decay rate", _number("decay_rate", values["decay_rate"]), 6)),
        row(labelled("Batch size", _number("batch_size", values["batch_size"]), 4),
            labelled("Max train images", _number("max_train", values["max_train"], placeholder="all"), 4),
            labelled("Max test images", _number("max_test", values["max_test"], placeholder="all"), 4)),
        row(labelled("Seed", _number("seed", values["seed"]), 4)),
        html.H6("Watch a test image learn", className="mt-2 mb-1"),
        # text, not a number: it also takes a drawn or uploaded image's u:<id> (see Explore's drawing pad)
        row(labelled("Test image or u:…", _text("probe_image", values["probe_image"], "none"), 5),
            labelled("Layer", dcc.Dropdown(id=FIELD["probe_layer"], options=choices(layers),
                                              value=values["probe_layer"], clearable=True), 7)),
        dbc.Button("Watch this image and layer in the running job", id=PROBE_NOW, color="secondary",
                   outline=True, size="sm", disabled=True,
                   title="the running job records them from its next epoch on"),
        html.Div(
            [
                dbc.Button("Start training", id=START, color="primary", className="me-2"),
                dbc.Button("Stop", id=STOP, color="danger", outline=True, className="me-2", disabled=True),
                dbc.Switch(id=SAVE_PARTIAL, label="keep the partial model when stopping", value=False,
                           className="d-inline-block small ms-1"),
            ],
            className="mt-3",
        ),
        html.Div(id=FORM_MESSAGE, className="mt-2"),
    ]
    return dbc.Card(dbc.CardBody(body), className="mb-3")


def settings_list(values: dict) -> html.Dl:
    """A run's settings (keys of :func:`default_form`) as a read-only list: blank ones (no dataset file, no probe)
    are left out, a missing limit reads "all"."""
    items = []
    for key, label in SETTING_LABELS.items():
        value = values.get(key)
        if key in ("max_train", "max_test") and value is None:
            value = "all"
        if value in (None, ""):
            continue
        items += [html.Dt(label, className="col-6 fw-normal text-muted"), html.Dd(str(value), className="col-6 mb-0")]
    return html.Dl(items, className="row small mb-0")
