"""Small Dash pieces every page uses: labelled controls, figure cards, alerts, layer, class, colormap and
attribution-method choices, and the "true class, predicted class" verdict."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
from dash import dcc, html

from app.core import attribution
from app.core.activations import first_map_layer
from app.core.errors import StillComputing
from app.core.grid import COLORMAPS
from app.figures.features import METHOD_LABELS

# The class of the message a page shows while a background job computes what it needs: while one is on the
# screen, assets/still_computing.js lets the navigation bar's poll tick and the page asks again.
STILL_COMPUTING_CLASS = "still-computing"


def is_still_computing(children) -> bool:
    """Whether a message area's content (as a callback receives it: component dicts) is a still-computing note."""
    stack = [children]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            props = item.get("props", {})
            if STILL_COMPUTING_CLASS in str(props.get("className", "")).split():
                return True
            stack.append(props.get("children"))
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def error_alert(message: str | Exception) -> dbc.Alert:
    """A visible, dismissable message instead of a traceback; for :class:`StillComputing` a progress note that
    stays until the result arrives (the page asks again every few seconds)."""
    if isinstance(message, StillComputing):
        return dbc.Alert([dbc.Spinner(size="sm", spinner_class_name="me-2"), str(message)], color="info",
                         className=f"py-2 {STILL_COMPUTING_CLASS}")
    return dbc.Alert(str(message), color="warning", dismissable=True, className="py-2")


def info_alert(message) -> dbc.Alert:
    """A dismissable confirmation (a job started, a stop requested)."""
    return dbc.Alert(message, color="info", dismissable=True, className="py-2")


def labelled(label: str, control, width: int | None = None) -> dbc.Col:
    """A control with a small label above it, as a grid column: ``width`` twelfths of the row on wide screens
    (≥ 992 px), half the row on tablets and small laptops (where 2/12 would cut a layer name), the whole row on
    phones."""
    if width is None:
        return dbc.Col([dbc.Label(label, className="small text-muted mb-0"), control], className="mb-2")
    return dbc.Col([dbc.Label(label, className="small text-muted mb-0"), control], xs=12, sm=6, lg=width,
                   className="mb-2")


# The dcc.Graph config of a small chart: no mode bar (on a chart under ~240 px it takes a large share of the space).
SMALL_CHART = {"displayModeBar": False}
# The mode bar of every other graph: three buttons in one group, ~80 px wide, so it stays one row high even in a
# 180 px wide compare card (Plotly's full bar, ~250 px, wraps to two rows there and covers the title again).
TOOLBAR = {"displaylogo": False, "modeBarButtons": [["zoom2d", "resetScale2d", "toImage"]]}
# Graphs at least this tall may show the mode bar (their figures keep a band for it above the title).
SMALL_CHART_PX = 240


def figure_card(graph_id: str, height: str, title: str | None = None, toolbar: bool = True) -> dbc.Card:
    """A card holding one graph with a loading spinner; small graphs hide Plotly's toolbar (``toolbar=False``)."""
    config = TOOLBAR if toolbar else SMALL_CHART
    graph = dcc.Graph(id=graph_id, style={"height": height}, config=config)
    body = [html.H6(title, className="card-title")] if title else []
    return dbc.Card(dbc.CardBody([*body, dcc.Loading(graph, delay_show=300)]), className="mb-3")


def layer_options(engine) -> list[dict]:
    """Dropdown options of a model's layers, labelled with their output shape (``Conv2D_3 · 3×3×128``)."""
    return [{"label": info.label, "value": info.name} for info in engine.layers]


def default_layer(engine, preferred: str | None = None) -> str:
    """``preferred`` if the model has it, else its first layer with maps (the first conv layer)."""
    if preferred in [info.name for info in engine.layers]:  # a list: a hostile value may be unhashable
        return preferred
    return first_map_layer(engine.layers)


# The first option of a class choice that may follow the image: the class the model predicts for it.
PREDICTED_CLASS = -1


def class_options(class_names: list[str], predicted: bool = False) -> list[dict]:
    """Dropdown options of a model's classes, valued by class number: a class named after its number is shown
    so (``4``), another with its number (``0: T-shirt/top``); first "predicted class" (value
    :data:`PREDICTED_CLASS`) when ``predicted``."""
    named = [{"label": name if name == str(i) else f"{i}: {name}", "value": i} for i, name in enumerate(class_names)]
    return ([{"label": "predicted class", "value": PREDICTED_CLASS}] if predicted else []) + named


def attribution_method_options() -> list[dict]:
    """Dropdown options of "Where the model looks": off (the default), then every attribution method."""
    return [{"label": "off", "value": ""}] + [{"label": METHOD_LABELS[m], "value": m} for m in attribution.METHODS]


def kept_choice(value, options: list[dict], fallback_position: int):
    """``value`` if it is one of ``options``' values, else the value at ``fallback_position`` (the last one when
    there are fewer), None when there are no options: a choice kept across a change of model where it exists."""
    values = [option["value"] for option in options]
    if value in values:
        return value
    return values[min(fallback_position, len(values) - 1)] if values else None


def output_unit_names(loaded, layer_name: str) -> list[str] | None:
    """The class names when ``layer_name`` is the model's output layer (its nodes are the classes), else None."""
    if loaded.model.layers and layer_name == loaded.model.layers[-1].name:
        return list(loaded.class_names)
    return None


def colormap_dropdown(component_id: str, value: str | None) -> dcc.Dropdown:
    """A dropdown of the supported colormaps (viridis when ``value`` is not one of them)."""
    return dcc.Dropdown(
        id=component_id,
        options=[{"label": name, "value": name} for name in COLORMAPS],
        value=value if value in COLORMAPS else "viridis",
        clearable=False,
    )


def verdict(class_names: list[str], label: int | None, probabilities) -> list:
    """``true class 4, predicted 9 (87.0%)``, the prediction green when right and red when wrong; for an image
    without a true class (a drawn or uploaded one, ``label`` None) ``predicted 7 (98.1%)``. An image the model
    cannot score (non-finite pixels) says so instead of naming a class."""
    truth = [] if label is None else [html.Span("true class "), html.B(class_names[label]), html.Span(", ")]
    if not np.isfinite(probabilities).all():
        return [*truth, html.Span("no prediction: the model's output is not finite (the image holds NaN or infinity)",
                                  className="text-danger")]
    predicted = int(probabilities.argmax())
    if label is None:
        return [html.Span("predicted "), html.B(class_names[predicted]),
                html.Span(f" ({probabilities[predicted]:.1%})")]
    return [
        *truth,
        html.Span("predicted "),
        html.B(class_names[predicted], className="text-success" if predicted == label else "text-danger"),
        html.Span(f" ({probabilities[predicted]:.1%})"),
    ]
