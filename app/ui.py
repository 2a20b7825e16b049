"""Dash building blocks shared by the pages: option lists, controls, URL syncing, error alerts."""

from __future__ import annotations

from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from app import services
from app.figures import COLORMAPS


def choose_model(requested: str | None) -> tuple[list[dict], str | None, list]:
    """What a page needs to open on a model, from one look at the store.

    Returns:
        ``(options, chosen, alerts)``: dropdown options of every model (broken ones disabled, with their reason);
        ``requested`` if usable, else the bundled ``mnist-cnn``, else the first usable model, else None; and the
        alerts that explain a fallback or an empty store.
    """
    entries = services.store().entries()
    options = [
        {"label": entry.name if entry.ok else f"{entry.name} (broken: {entry.reason[:80]})", "value": entry.name,
         "disabled": not entry.ok}
        for entry in entries
    ]
    usable = [entry.name for entry in entries if entry.ok]
    chosen = next((name for name in (requested, "mnist-cnn") if name in usable), usable[0] if usable else None)
    alerts = []
    if chosen is None:
        alerts.append(error_alert("No usable model in the store: train one on the Train page."))
    elif requested and requested != chosen:
        alerts.append(error_alert(f"Model {requested!r} is not available; showing {chosen!r}."))
    return options, chosen, alerts


def layer_options(engine) -> list[dict]:
    """Dropdown options of a model's layers, labelled with their output shape (``Conv2D_3 · 3×3×128``)."""
    return [{"label": info.label, "value": info.name} for info in engine.layers]


def default_layer(engine, preferred: str | None = None) -> str:
    """``preferred`` if the model has it, else its first layer with maps (the first conv layer)."""
    names = [info.name for info in engine.layers]
    if preferred in names:
        return preferred
    return next((info.name for info in engine.layers if info.is_map), names[0])


def colormap_dropdown(component_id: str, value: str) -> dcc.Dropdown:
    """A dropdown of the supported colormaps."""
    return dcc.Dropdown(
        id=component_id,
        options=[{"label": name, "value": name} for name in COLORMAPS],
        value=value if value in COLORMAPS else "viridis",
        clearable=False,
    )


def parse_int(raw, default: int) -> int:
    """An integer from a URL parameter or input, ``default`` when missing or malformed."""
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def parse_flag(raw) -> bool:
    """A boolean URL parameter: 1/true/yes/on."""
    return str(raw).lower() in ("1", "true", "yes", "on")


def query_string(params: dict) -> str:
    """``?a=1&b=2`` from the non-empty parameters, in the given order."""
    # Identity checks, not `in (None, "", False)`: 0 == False would drop image=0 from links.
    kept = {key: value for key, value in params.items() if value is not None and value is not False and value != ""}
    return "?" + urlencode({k: (1 if v is True else v) for k, v in kept.items()}) if kept else ""


def register_url_sync(store_id: str, sink_id: str) -> None:
    """Mirror a page's query string (kept in ``dcc.Store(store_id)``) into the address bar.

    Call once at import of the page module; the layout holds ``dcc.Store(store_id)`` and ``dcc.Store(sink_id)``.
    ``history.replaceState`` changes the URL without a navigation event, so the page is not rebuilt and the
    back button is not flooded; a copied link reopens the same view through ``layout(**query)``.
    """
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="replaceQuery"),
        Output(sink_id, "data"),
        Input(store_id, "data"),
    )


def error_alert(message: str) -> dbc.Alert:
    """A visible, dismissable message instead of a traceback."""
    return dbc.Alert(message, color="warning", dismissable=True, className="py-2")


def labelled(label: str, control, width: int | None = None) -> dbc.Col:
    """A control with a small label above it, as a grid column."""
    return dbc.Col([dbc.Label(label, className="small text-muted mb-0"), control], width=width, className="mb-2")


def figure_card(graph_id: str, height: str, title: str | None = None, toolbar: bool = True) -> dbc.Card:
    """A card holding one graph with a loading spinner; small graphs hide Plotly's toolbar (it covers titles)."""
    config = {"displaylogo": False} if toolbar else {"displayModeBar": False}
    graph = dcc.Graph(id=graph_id, style={"height": height}, config=config)
    body = [html.H6(title, className="card-title")] if title else []
    return dbc.Card(dbc.CardBody([*body, dcc.Loading(graph, delay_show=300)]), className="mb-3")
