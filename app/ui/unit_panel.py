"""The "top images of a unit" panel, shared by every page with a clickable grid.

A page keeps its chosen unit in a store (:class:`UnitIds`; in the URL as ``unit=``): a click on a map or node
sets it (:func:`clicked_unit`), a change of model or layer keeps it where the new layer has that unit
(:func:`unit_on_layer`), and the panel (:func:`unit_panel`) shows its top test images, scrolled into view when a
click opened it. The panel holds its own mean/max switch, whose one pattern-matching callback (below) serves
every page, keyed by a ``page`` name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
from dash import MATCH, ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from app.context import app_context
from app.core.errors import ExplorerError
from app.core.grid import GridLayout, layout_for, unit_at
from app.core.units import RANK_BY
from app.ui import inputs
from app.ui.components import error_alert
from app.ui.links import explorer_link, query_string
from app.ui.navigation import STILL_COMPUTING_POLL
from app.ui.page import asks_again, open_layer
from app.ui.thumbnails import top_images_gallery

# A page's own query is far shorter; a longer one did not come from it.
MAX_QUERY_CHARS = 2000

UNIT_BY = "unit-panel-by"
UNIT_STATE = "unit-panel-state"
UNIT_GALLERY = "unit-panel-gallery"
TOP_K = 9


@dataclass(frozen=True)
class UnitIds:
    """The ids of a page's unit panel, derived from the page's prefix (``explore-unit-panel``, ...)."""

    prefix: str

    @property
    def panel(self) -> str:
        """Where the panel shows."""
        return f"{self.prefix}-unit-panel"

    @property
    def unit(self) -> str:
        """The ``dcc.Store`` of the chosen unit: ``{"unit": 5, "clicked": true}`` or None."""
        return f"{self.prefix}-unit"

    @property
    def scrolled(self) -> str:
        """The output of the clientside callback that scrolls a panel opened by a click into view."""
        return f"{self.prefix}-unit-scrolled"


def unit_area(ids: UnitIds, unit: int | None) -> html.Div:
    """The panel's place on a page, opened on ``unit`` (from the page's link) or empty."""
    return html.Div([html.Div(id=ids.panel), dcc.Store(id=ids.unit, data=None if unit is None else {"unit": unit}),
                     dcc.Store(id=ids.scrolled)])


def register_unit_panel(ids: UnitIds, model: str, layer: str):
    """Register a page's unit panel: the chosen unit (``ids.unit``) shows its top test images for the page's model
    and layer dropdowns (``model``, ``layer``), scrolled into view when a click opened it.

    Call once at import of the page module. Returns the panel's callback, so that it can be called directly.
    """
    # Scrolled only when a click opened it, not a link or a layer change: the grids and the ranking that open it
    # fill the screen, and a panel below the fold looks like a click that did nothing.
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="scrollUnitPanel"),
        Output(ids.scrolled, "data"),
        Input(ids.panel, "children"),
        State(ids.unit, "data"),
        State(ids.panel, "id"),
        prevent_initial_call=True,
    )

    @callback(Output(ids.panel, "children"), Input(ids.unit, "data"), State(model, "value"), State(layer, "value"),
              Input(STILL_COMPUTING_POLL, "n_intervals"), State(ids.panel, "children"))
    def show_unit_panel(unit, model_name, layer_name, _poll=None, shown=None):
        """The test images that activate the chosen unit most; none chosen, no panel (asked again while a
        background job computes the layer's top images)."""
        asks_again(shown)
        return unit_panel(ids.prefix, model_name, layer_name, chosen_unit(unit))

    return show_unit_panel


def register_unit_in_url(ids: UnitIds, view: str, query: str, view_class, **controls: str):
    """Register the query of a page whose view (a ``view_class``, with a ``unit`` field) keeps the query string it
    wrote in the store ``view``: the view with the chosen unit, written by itself, goes to the page's URL store
    ``query``. ``controls`` name further fields of the view set by a control's value alone (``method=<dropdown
    id>``), so that choosing there changes the URL without redrawing the view. Call once at import of the page
    module; returns the callback."""
    fields = list(controls)

    @callback(Output(query, "data"), Input(view, "data"), Input(ids.unit, "data"),
              *(Input(controls[field], "value") for field in fields))
    def sync_query(view_query, unit, *values):
        """The query string that reopens the view, its chosen unit and its controls' choices."""
        if not isinstance(view_query, str) or len(view_query) > MAX_QUERY_CHARS or not view_query.startswith("?"):
            return no_update  # not what the page wrote (a callback's input may be any JSON)
        query_values = parse_qs(view_query[1:])
        for field, value in zip(fields, values, strict=False):
            query_values.pop(field, None)
            # read back by the view like a link's text: what it cannot read (any JSON may arrive) is its default
            if isinstance(value, str | int) and not isinstance(value, bool):
                query_values[field] = [str(value)]
        shown, _ = view_class.from_query(query_values)
        return replace(shown, unit=chosen_unit(unit)).to_query()

    return sync_query


def register_unit_outline(ids: UnitIds, graph: str | dict):
    """Register the outline of the chosen unit on the page's grid ``graph`` (an id, or a pattern-matching id with
    ``ALL`` for a grid per image), moved in the browser (``assets/explorer.js`` outlineUnit) from the grid's own
    meta: choosing costs no round trip and redraws no grid. The first drawing of a grid outlines the unit itself
    (``chosen_unit`` of :func:`~app.figures.grids.activation_heatmap`). Call once at import of the page module."""
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="outlineUnit"),
        Output(graph, "figure", allow_duplicate=True),
        Input(ids.unit, "data"),
        State(graph, "figure"),
        prevent_initial_call=True,
    )


def chosen_unit(data) -> int | None:
    """The unit number held by a page's unit store (any JSON may arrive): None when there is none."""
    return inputs.integer_or_none(data.get("unit"), 0) if isinstance(data, dict) else None


def clicked_unit(click_data, layout: GridLayout | None = None):
    """The unit store's new value for a click on a grid (of ``layout``) or the ranking: ``{"unit": n, "clicked":
    True}``, or ``no_update`` when there is no unit under it (padding, a note) or no click at all (a graph being
    inserted)."""
    unit = unit_from_click(click_data, layout)
    return no_update if unit is None else {"unit": unit, "clicked": True}


def unit_on_layer(data, model_name, layer_name) -> dict | None:
    """The unit store after a change of model or layer: the unit kept when the new layer has it (unit < its
    number of units), else None."""
    unit = chosen_unit(data)
    if unit is None:
        return None
    try:
        _, info = open_layer(model_name, layer_name)
    except ExplorerError:
        return None
    return {"unit": unit} if unit < info.n_units else None


def layer_layout(model_name, layer_name) -> GridLayout | None:
    """The grid layout a layer's activation grids are drawn in (None when the model or layer cannot be opened):
    a click on a grid is turned into its unit with it."""
    try:
        _, info = open_layer(model_name, layer_name)
    except ExplorerError:
        return None
    return layout_for(info.output_shape)


def unit_from_click(click_data, layout: GridLayout | None = None) -> int | None:
    """The unit under a click: the ``customdata[0]`` of a chart that names its units (the ranking's bars, the
    features grid), else the cell's x/y in an activation grid of ``layout`` (which carries no per-cell unit numbers);
    None for padding, a cell outside the grid, or no click."""
    try:
        point = click_data["points"][0]
    except (TypeError, KeyError, IndexError):
        return None
    custom = point.get("customdata") if isinstance(point, dict) else None
    if custom is not None:
        try:
            # plotly 7 ships customdata as a typed array, which reaches Python as {"0": unit, "1": ...}
            return inputs.integer_or_none(custom["0"] if isinstance(custom, dict) else custom[0], 0)
        except (TypeError, KeyError, IndexError):
            return None
    if layout is None:
        return None
    try:
        x, y = _cell(point["x"]), _cell(point["y"])
    except (TypeError, KeyError):
        return None
    return None if x is None or y is None else unit_at(layout, x, y)


def _cell(coordinate) -> int | None:
    """The grid cell of a click's x or y: a whole cell, or the centre of a block of an averaged-down grid (a
    fraction within one map: its cells start at the block's floor); None for anything else."""
    if isinstance(coordinate, float) and math.isfinite(coordinate) and 0 <= coordinate < 2**31:
        return math.floor(coordinate)
    return inputs.integer_or_none(coordinate, 0)


def _gallery(model_name: str, layer_name: str, unit: int, by: str):
    loaded, info = open_layer(model_name, layer_name)
    by = inputs.choice(by, "the ranking", RANK_BY)
    if app_context().statistics.is_dead(loaded, info.name, unit):
        word = "map" if info.is_map else "node"
        return html.P(f"{word.capitalize()} {unit} of {info.name} is dead on the whole test set: it is 0 on all "
                      f"{loaded.engine.n_images} test images, so no image activates it more than another.",
                      className="text-muted mb-0 unit-dead")
    indices, values = app_context().statistics.top_images(loaded, info.name, unit, TOP_K, by)
    predicted = app_context().statistics.predictions(loaded).argmax(axis=1)
    return top_images_gallery(
        loaded.images, indices, values, loaded.labels, predicted, loaded.class_names,
        lambda index: explorer_link(model_name, layer_name, index),
    )


def unit_panel(page: str, model_name, layer_name, unit: int | None, by: str = "mean"):
    """The panel listing the test images that activate ``unit`` most (or saying it never fires), [] for no unit.

    Args:
        page: a name unique to the page, so its panel's switch drives only its own gallery.
        model_name, layer_name: what the clicked grid shows (as the callback received them).
        unit: the map or node (see :func:`chosen_unit`, :func:`unit_from_click`).
    """
    if unit is None or not model_name or not layer_name:
        return []
    try:
        unit = inputs.integer(unit, "the unit", 0)
        _, info = open_layer(model_name, layer_name)
        gallery = _gallery(model_name, info.name, unit, by)
    except ExplorerError as exc:
        return error_alert(exc)
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
    return dbc.Card(dbc.CardBody([header, state, body]), className="mb-3 unit-panel")


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
        return error_alert(exc)
