"""Compare page: up to 8 test images side by side at one layer, on ONE shared colour scale, plus B − A.

The view lives in the URL (``/compare?model=mnist-cnn&layer=Conv2D_3&images=12,7,300&cmap=jet&a=12&b=7``). Every
image shows its input, its grid, the predicted class and confidence; the grids share zmin/zmax computed over all of
them, so a colour means the same value everywhere. Clicking a map or node lists its top test images.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from app import analysis_ui, services, ui
from app.analysis_figures import difference_heatmap, value_range
from app.core import stats
from app.core.activations import ImageOutOfRange, LayerNotFound
from app.core.store import StoreError
from app.figures import COLORMAPS, activation_heatmap, input_image_figure

dash.register_page(__name__, path="/compare", name="Compare", title="Compare · CNN Activation Explorer", nav_order=1)

MAX_IMAGES = 8
DEFAULT_IMAGES = "0,1,2"
MODEL = "compare-model"
LAYER = "compare-layer"
IMAGES = "compare-images"
CMAP = "compare-cmap"
CARDS = "compare-cards"
GRID = "compare-grid"  # pattern-matching: {"type": GRID, "index": position}
DIFF_A = "compare-diff-a"
DIFF_B = "compare-diff-b"
DIFFERENCE = "compare-difference"
MESSAGE = "compare-message"
DIFF_MESSAGE = "compare-diff-message"
UNIT_PANEL = "compare-unit-panel"
QUERY = "compare-query"
QUERY_SINK = "compare-query-sink"
PAGE = "compare"

ui.register_url_sync(QUERY, QUERY_SINK)


def compare_link(model_name: str | None, images, layer: str | None = None) -> str:
    """The compare URL of ``images`` (commas kept readable in the address)."""
    query = ui.query_string({"model": model_name, "layer": layer, "images": ",".join(str(int(i)) for i in images)})
    return "/compare" + query.replace("%2C", ",")


def layout(model=None, layer=None, images=None, cmap=None, a=None, b=None, **_other):
    """The page, opened in the state the query string describes (invalid values fall back to defaults)."""
    model_options, model_name, messages = ui.choose_model(model)
    layer_options, layer_value = [], None
    if model_name is not None:
        engine = services.store().get(model_name).engine
        layer_options = ui.layer_options(engine)
        layer_value = ui.default_layer(engine, layer or "Conv2D_3")
        if layer and layer != layer_value:
            messages.append(ui.error_alert(f"Layer {layer!r} is not in {model_name!r}; showing {layer_value!r}."))
    pair = [ui.parse_int(a, None), ui.parse_int(b, None)]
    controls = dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    ui.labelled("Model", dcc.Dropdown(id=MODEL, options=model_options, value=model_name,
                                                      clearable=False), 3),
                    ui.labelled("Layer", dcc.Dropdown(id=LAYER, options=layer_options, value=layer_value,
                                                      clearable=False), 3),
                    ui.labelled(
                        f"Test images (up to {MAX_IMAGES}, e.g. 12, 7, 300)",
                        dbc.Input(id=IMAGES, type="text", value=images or DEFAULT_IMAGES, debounce=0.5, size="sm"),
                        4,
                    ),
                    ui.labelled("Colormap", ui.colormap_dropdown(CMAP, cmap if cmap in COLORMAPS else "viridis"), 2),
                ],
                className="g-2 align-items-end",
            )
        ),
        className="mb-3",
    )
    difference = dbc.Card(
        dbc.CardBody(
            [
                dbc.Row(
                    [
                        dbc.Col(html.H6("Difference B − A (red: stronger in B, blue: stronger in A)"), width="auto"),
                        ui.labelled("A", dcc.Dropdown(id=DIFF_A, value=pair[0], clearable=False), 2),
                        ui.labelled("B", dcc.Dropdown(id=DIFF_B, value=pair[1], clearable=False), 2),
                    ],
                    className="g-2 align-items-end",
                ),
                html.Div(id=DIFF_MESSAGE),
                dcc.Loading(dcc.Graph(id=DIFFERENCE, style={"height": "480px"}, config={"displaylogo": False}),
                            delay_show=300),
            ]
        ),
        className="mb-3",
    )
    return html.Div(
        [
            html.Div(messages, id=MESSAGE),
            controls,
            html.Div(id=CARDS),
            html.Div(id=UNIT_PANEL),
            difference,
            dcc.Store(id=QUERY),
            dcc.Store(id=QUERY_SINK),
        ]
    )


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Input(MODEL, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, current_layer):
    """A new model: its layers, keeping the current one if it has it."""
    try:
        engine = services.store().get(model_name).engine
    except StoreError:
        return [], None
    return ui.layer_options(engine), ui.default_layer(engine, current_layer)


def _image_card(position, index, loaded, grid_figure, column_width):
    """One image's column: input, predicted class and confidence, its grid (clickable)."""
    probabilities = loaded.engine.probabilities(index)
    predicted, label = int(probabilities.argmax()), int(loaded.labels[index])
    names = loaded.class_names
    verdict = html.Div(
        [
            html.B(f"#{index}"),
            html.Span(f" · true {names[label]} · predicted "),
            html.B(names[predicted], className="text-success" if predicted == label else "text-danger"),
            html.Span(f" ({probabilities[predicted]:.1%})"),
        ],
        className="small",
    )
    body = [
        dcc.Graph(figure=input_image_figure(loaded.images[index]), style={"height": "140px"},
                  config={"displayModeBar": False, "staticPlot": True}),
        verdict,
        dcc.Graph(id={"type": GRID, "index": position}, figure=grid_figure, style={"height": "380px"},
                  config={"displaylogo": False}),
    ]
    return dbc.Col(dbc.Card(dbc.CardBody(body, className="p-2"), className="mb-3"), md=column_width)


@callback(
    Output(CARDS, "children"),
    Output(DIFF_A, "options"),
    Output(DIFF_A, "value"),
    Output(DIFF_B, "options"),
    Output(DIFF_B, "value"),
    Output(MESSAGE, "children", allow_duplicate=True),
    Input(MODEL, "value"),
    Input(LAYER, "value"),
    Input(IMAGES, "value"),
    Input(CMAP, "value"),
    State(DIFF_A, "value"),
    State(DIFF_B, "value"),
    prevent_initial_call="initial_duplicate",
)
def render_images(model_name, layer_name, images_text, cmap, current_a, current_b):
    """Every image's input and grid on one colour scale (zmin/zmax over all grids), and the A/B choices."""
    if not model_name or not layer_name:
        return (no_update,) * 5 + (ui.error_alert("Choose a model and a layer."),)
    try:
        loaded = services.store().get(model_name)
        engine = loaded.engine
        info = engine.layer(layer_name)
        indices, problems = stats.parse_indices(images_text, engine.n_images, MAX_IMAGES)
        if not indices:
            raise ImageOutOfRange("type at least one test-image number, e.g. 12, 7, 300")
        tiles = [engine.tiled(info.name, index) for index in indices]
    except (StoreError, LayerNotFound, ImageOutOfRange) as exc:
        return [], [], None, [], None, ui.error_alert(str(exc))
    zrange = value_range([grid for grid, _ in tiles])
    column_width = 3 if len(indices) > 2 else 6
    cards = [
        _image_card(
            position, index, loaded,
            activation_heatmap(grid, grid_layout, cmap, zrange=zrange, title=f"image {index} · {info.name}"),
            column_width,
        )
        for position, ((grid, grid_layout), index) in enumerate(zip(tiles, indices, strict=True))
    ]
    options = [{"label": f"#{index}", "value": index} for index in indices]
    a = current_a if current_a in indices else indices[0]
    b = current_b if current_b in indices and current_b != a else next((i for i in indices if i != a), a)
    message = [ui.error_alert("; ".join(problems))] if problems else []
    return dbc.Row(cards, className="g-2"), options, a, options, b, message


@callback(
    Output(DIFFERENCE, "figure"),
    Output(DIFF_MESSAGE, "children"),
    Output(QUERY, "data"),
    Input(DIFF_A, "value"),
    Input(DIFF_B, "value"),
    State(MODEL, "value"),
    State(LAYER, "value"),
    State(IMAGES, "value"),
    State(CMAP, "value"),
)
def render_difference(a, b, model_name, layer_name, images_text, cmap):
    """B − A on the diverging RdBu scale centred on 0, and the query string that reopens the whole view."""
    if a is None or b is None or not model_name or not layer_name:
        return {}, [], no_update
    try:
        loaded = services.store().get(model_name)
        engine = loaded.engine
        info = engine.layer(layer_name)
        difference = engine.activations(info.name, engine.check_image(int(b))) - engine.activations(
            info.name, engine.check_image(int(a))
        )
    except (StoreError, LayerNotFound, ImageOutOfRange, ValueError, TypeError) as exc:
        return {}, ui.error_alert(str(exc)), no_update
    indices, _ = stats.parse_indices(images_text, engine.n_images, MAX_IMAGES)
    query = ui.query_string(
        {"model": model_name, "layer": info.name, "images": ",".join(map(str, indices)), "cmap": cmap,
         "a": str(a), "b": str(b)}  # as text: ui.query_string would drop image 0 (it equals False)
    ).replace("%2C", ",")
    figure = difference_heatmap(difference, f"image {b} − image {a} · {info.name}")
    return figure, [], query


@callback(
    Output(UNIT_PANEL, "children"),
    Input({"type": GRID, "index": ALL}, "clickData"),
    Input(DIFFERENCE, "clickData"),
    Input(MODEL, "value"),
    Input(LAYER, "value"),
    prevent_initial_call=True,
)
def on_unit_click(_grid_clicks, _difference_click, model_name, layer_name):
    """A click on a map or node of any grid: the test images that activate that unit most (cleared on a new layer)."""
    if ctx.triggered_id is None or not ctx.triggered or ctx.triggered_id in (MODEL, LAYER):
        return []
    return analysis_ui.unit_panel(PAGE, model_name, layer_name, ctx.triggered[0]["value"])
