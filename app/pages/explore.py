"""Explorer page: one model, one layer, one test image; the map/node grid, the input and the class probabilities.

The view lives in the URL (``/?model=mnist-cnn&layer=Conv2D_3&image=1302&cmap=jet&reverse=1&scale=1``), so a link
reopens it. Callbacks only unpack inputs, call the activation engine and the figure builders, and return.
"""

from __future__ import annotations

import random

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from app import services, ui
from app.core.activations import ImageOutOfRange, LayerNotFound
from app.core.store import StoreError
from app.figures import COLORMAPS, activation_heatmap, input_image_figure, probability_bars

dash.register_page(__name__, path="/", name="Explore", title="Explore · CNN Activation Explorer", nav_order=0)

MODEL = "explore-model"
LAYER = "explore-layer"
IMAGE = "explore-image"
PREVIOUS = "explore-previous"
NEXT = "explore-next"
RANDOM = "explore-random"
IMAGE_INFO = "explore-image-info"
CMAP = "explore-cmap"
REVERSE = "explore-reverse"
SCALE = "explore-scale"
HEATMAP = "explore-heatmap"
INPUT_IMAGE = "explore-input"
PROBABILITIES = "explore-probabilities"
MESSAGE = "explore-message"
MODEL_INFO = "explore-model-info"
UNIT_PANEL = "explore-unit-panel"
QUERY = "explore-query"
QUERY_SINK = "explore-query-sink"

ui.register_url_sync(QUERY, QUERY_SINK)


def _model_info(loaded) -> str:
    accuracy = loaded.meta.get("metrics", {}).get("test_accuracy")
    parts = [f"{loaded.engine.n_images} test images", f"{len(loaded.class_names)} classes"]
    if accuracy is not None:
        parts.append(f"test accuracy {accuracy:.1%}")
    return " · ".join(parts)


def layout(model=None, layer=None, image=None, cmap=None, reverse=None, scale=None, **_other):
    """The page, opened in the state the query string describes (invalid values fall back to defaults)."""
    model_options, model_name, messages = ui.choose_model(model)
    layer_options, layer_value, image_max, info = [], None, 0, ""
    image_index = ui.parse_int(image, 0)
    if model_name is not None:
        loaded = services.store().get(model_name)
        engine = loaded.engine
        layer_options = ui.layer_options(engine)
        layer_value = ui.default_layer(engine, layer)
        if layer and layer != layer_value:
            messages.append(ui.error_alert(f"Layer {layer!r} is not in {model_name!r}; showing {layer_value!r}."))
        image_max = engine.n_images - 1
        if not 0 <= image_index <= image_max:
            messages.append(ui.error_alert(f"Image {image!r} is out of range 0-{image_max}; showing 0."))
            image_index = 0
        info = _model_info(loaded)

    controls = dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    ui.labelled(
                        "Model",
                        dcc.Dropdown(id=MODEL, options=model_options, value=model_name, clearable=False),
                        2,
                    ),
                    ui.labelled(
                        "Layer",
                        dcc.Dropdown(id=LAYER, options=layer_options, value=layer_value, clearable=False),
                        3,
                    ),
                    ui.labelled(
                        "Test image",
                        dbc.InputGroup(
                            [
                                dbc.Button("◀", id=PREVIOUS, color="secondary", outline=True, title="previous image"),
                                dbc.Input(id=IMAGE, type="number", min=0, max=image_max, step=1, value=image_index,
                                          debounce=0.3),
                                dbc.Button("▶", id=NEXT, color="secondary", outline=True, title="next image"),
                                dbc.Button("random", id=RANDOM, color="secondary", outline=True, title="random image"),
                            ],
                            size="sm",
                        ),
                        3,
                    ),
                    ui.labelled("Colormap", ui.colormap_dropdown(CMAP, cmap if cmap in COLORMAPS else "viridis"), 2),
                    dbc.Col(
                        [
                            dbc.Switch(id=REVERSE, label="reverse", value=ui.parse_flag(reverse), className="small"),
                            dbc.Switch(id=SCALE, label="standardise", value=ui.parse_flag(scale), className="small"),
                        ],
                        width=2,
                    ),
                ],
                className="g-2 align-items-end",
            )
        ),
        className="mb-3",
    )
    return html.Div(
        [
            html.Div(messages, id=MESSAGE),
            controls,
            html.Div(info, id=MODEL_INFO, className="small text-muted mb-2"),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            ui.figure_card(INPUT_IMAGE, "260px", toolbar=False),
                            html.Div(id=IMAGE_INFO, className="small mb-2"),
                            ui.figure_card(PROBABILITIES, "260px", toolbar=False),
                        ],
                        md=3,
                    ),
                    dbc.Col([ui.figure_card(HEATMAP, "72vh"), html.Div(id=UNIT_PANEL)], md=9),
                ]
            ),
            dcc.Store(id=QUERY),
            dcc.Store(id=QUERY_SINK),
        ]
    )


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(IMAGE, "max"),
    Output(MODEL_INFO, "children"),
    Input(MODEL, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, current_layer):
    """A new model: its layers (keeping the current one if it has it), its test-set size and summary."""
    try:
        loaded = services.store().get(model_name)
    except StoreError as exc:
        return [], None, 0, str(exc)
    engine = loaded.engine
    return ui.layer_options(engine), ui.default_layer(engine, current_layer), engine.n_images - 1, _model_info(loaded)


@callback(
    Output(IMAGE, "value"),
    Input(PREVIOUS, "n_clicks"),
    Input(NEXT, "n_clicks"),
    Input(RANDOM, "n_clicks"),
    State(IMAGE, "value"),
    State(IMAGE, "max"),
    prevent_initial_call=True,
)
def on_step_image(_previous, _next, _random, current, maximum):
    """Previous/next wrap around the test set; random picks any image."""
    maximum = maximum or 0
    current = ui.parse_int(current, 0)
    if ctx.triggered_id == RANDOM:
        return random.randint(0, maximum)
    step = -1 if ctx.triggered_id == PREVIOUS else 1
    return (current + step) % (maximum + 1)


@callback(
    Output(HEATMAP, "figure"),
    Output(INPUT_IMAGE, "figure"),
    Output(PROBABILITIES, "figure"),
    Output(IMAGE_INFO, "children"),
    Output(QUERY, "data"),
    Output(MESSAGE, "children", allow_duplicate=True),
    Input(MODEL, "value"),
    Input(LAYER, "value"),
    Input(IMAGE, "value"),
    Input(CMAP, "value"),
    Input(REVERSE, "value"),
    Input(SCALE, "value"),
    prevent_initial_call="initial_duplicate",
)
def render(model_name, layer_name, image, cmap, reverse, scale):
    """The grid, input image and probabilities of the selected view, and the query string that reopens it."""
    if not model_name or not layer_name or image is None:
        return (no_update,) * 5 + (ui.error_alert("Choose a model, a layer and an image number."),)
    try:
        loaded = services.store().get(model_name)
        engine = loaded.engine
        index = engine.check_image(ui.parse_int(image, -1))
        info = engine.layer(layer_name)
        grid, layout_ = engine.tiled(info.name, index, scaled=bool(scale))
        probabilities = engine.probabilities(index)
    except (StoreError, LayerNotFound, ImageOutOfRange) as exc:
        return (no_update,) * 5 + (ui.error_alert(str(exc)),)
    label = int(loaded.labels[index])
    unit = "maps" if info.is_map else "nodes"
    heatmap = activation_heatmap(
        grid,
        layout_,
        cmap,
        bool(reverse),
        title=f"{info.label}: {info.n_units} {unit} of image {index}" + (" (standardised)" if scale else ""),
    )
    names = loaded.class_names
    predicted = int(probabilities.argmax())
    image_info = [
        html.Span(f"Image {index}: true class "),
        html.B(names[label]),
        html.Span(", predicted "),
        html.B(names[predicted], className="text-success" if predicted == label else "text-danger"),
        html.Span(f" ({probabilities[predicted]:.1%})"),
    ]
    query = ui.query_string(
        {"model": model_name, "layer": info.name, "image": index, "cmap": cmap, "reverse": bool(reverse),
         "scale": bool(scale)}
    )
    return (
        heatmap,
        input_image_figure(loaded.images[index], f"input · class {names[label]}"),
        probability_bars(probabilities, names, label),
        image_info,
        query,
        [],
    )


@callback(
    Output(UNIT_PANEL, "children"),
    Input(HEATMAP, "clickData"),
    Input(MODEL, "value"),
    Input(LAYER, "value"),
    prevent_initial_call=True,
)
def on_unit_click(click_data, model_name, layer_name):
    """A click on a map or node: the test images that activate that unit most (see :mod:`app.analysis_ui`).

    A new model or layer clears the panel, which would otherwise describe a unit no longer shown.
    """
    from app import analysis_ui  # imported here so this appended callback leaves the module's header untouched

    if ctx.triggered_id in (MODEL, LAYER):
        return []
    return analysis_ui.unit_panel("explore", model_name, layer_name, click_data)
