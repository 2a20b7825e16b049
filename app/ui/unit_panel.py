"""The "top images of a unit" panel, shared by every page with a clickable grid.

Clicking a map or node of any grid calls :func:`unit_panel` with the click; the panel holds its own mean/max
switch, whose one pattern-matching callback (below) serves every page, keyed by a ``page`` name.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, dcc, html

from app import services
from app.core.errors import ExplorerError
from app.core.grid import GridLayout, layout_for, unit_at
from app.core.units import RANK_BY
from app.ui import inputs
from app.ui.components import error_alert
from app.ui.links import explorer_link, query_string
from app.ui.page import open_layer
from app.ui.thumbnails import top_images_gallery

UNIT_BY = "unit-panel-by"
UNIT_STATE = "unit-panel-state"
UNIT_GALLERY = "unit-panel-gallery"
TOP_K = 9


def unit_from_click(click_data, layout: GridLayout) -> int | None:
    """The unit under a click on an activation heatmap of ``layout`` (from the cell's x/y: the figure carries no
    per-cell unit numbers); None for padding, a cell outside the grid, or no click."""
    try:
        point = click_data["points"][0]
        x, y = inputs.integer_or_none(point["x"], 0), inputs.integer_or_none(point["y"], 0)
    except (TypeError, KeyError, IndexError):
        return None
    return None if x is None or y is None else unit_at(layout, x, y)


def _gallery(model_name: str, layer_name: str, unit: int, by: str):
    loaded, info = open_layer(model_name, layer_name)
    indices, values = services.statistics().top_images(loaded, info.name, unit, TOP_K,
                                                       inputs.choice(by, "the ranking", RANK_BY))
    predicted = loaded.engine.predictions().argmax(axis=1)
    return top_images_gallery(
        loaded.images, indices, values, loaded.labels, predicted, loaded.class_names,
        lambda index: explorer_link(model_name, layer_name, index),
    )


def unit_panel(page: str, model_name: str | None, layer_name: str | None, click_data, by: str = "mean"):
    """The panel listing the test images that activate the clicked unit most, or [] when nothing is clicked.

    Args:
        page: a name unique to the page, so its panel's switch drives only its own gallery.
        model_name, layer_name: what the clicked grid shows.
        click_data: the heatmap's clickData.
    """
    if not click_data or not model_name or not layer_name:
        return []
    try:
        _, info = open_layer(model_name, layer_name)
        unit = unit_from_click(click_data, layout_for(info.output_shape))
        if unit is None:
            return []
        gallery = _gallery(model_name, info.name, unit, by)
    except ExplorerError as exc:
        return error_alert(str(exc))
    word = "map" if info.is_map else "node"
    api = f"/api/models/{model_name}/top-images" + query_string({"layer": info.name, "unit": unit, "k": TOP_K})
    header = dbc.Row(
        [
            dbc.Col(html.H6(f"Test images that activate {word} {unit} of {info.name} most", className="mb-0"),
                    width="auto"),
            dbc.Col(
                dcc.RadioItems(
                    id={"type": UNIT_BY, "page": page},
                    options=[{"label": " mean over the map", "value": "mean"},
                             {"label": " max over the map", "value": "max"}] if info.is_map
                    else [{"label": " node value", "value": "mean"}],
                    value=by,
                    inline=True,
                    inputClassName="ms-2",
                    className="small",
                ),
                width="auto",
            ),
            dbc.Col(html.A("JSON", href=api, target="_blank", className="small"), width="auto"),
        ],
        className="g-2 align-items-center mb-1",
    )
    state = dcc.Store(id={"type": UNIT_STATE, "page": page}, data={"model": model_name, "layer": info.name,
                                                                   "unit": unit})
    body = html.Div(gallery, id={"type": UNIT_GALLERY, "page": page})
    return dbc.Card(dbc.CardBody([header, state, body]), className="mb-3")


@callback(
    Output({"type": UNIT_GALLERY, "page": MATCH}, "children"),
    Input({"type": UNIT_BY, "page": MATCH}, "value"),
    State({"type": UNIT_STATE, "page": MATCH}, "data"),
    prevent_initial_call=True,
)
def on_rank_by_change(by, state):
    """Re-rank the clicked unit's top images by mean or max over the map."""
    if not isinstance(state, dict):
        return error_alert("Click a map or a node again.")
    try:
        return _gallery(state.get("model"), state.get("layer"), inputs.integer(state.get("unit"), "the unit", 0), by)
    except ExplorerError as exc:
        return error_alert(str(exc))
