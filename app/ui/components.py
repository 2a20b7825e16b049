"""Small Dash pieces every page uses: labelled controls, figure cards, alerts, layer and colormap choices, and the
"true class, predicted class" verdict."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
from dash import dcc, html

from app.figures.heatmaps import COLORMAPS


def error_alert(message: str) -> dbc.Alert:
    """A visible, dismissable message instead of a traceback."""
    return dbc.Alert(message, color="warning", dismissable=True, className="py-2")


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
    names = [info.name for info in engine.layers]
    if preferred in names:
        return preferred
    return next((info.name for info in engine.layers if info.is_map), names[0])


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
