"""Explorer page: one model, one layer, one test image; the map/node grid, the input and the class probabilities.

The view lives in the URL (``/?model=mnist-cnn&layer=Conv2D_3&image=1302&cmap=jet&reverse=1&scale=1``), so a link
reopens it. Callbacks only unpack inputs, call the activation engine and the figure builders, and return.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html

from app.core.errors import ExplorerError, InvalidInput
from app.figures.heatmaps import COLORMAPS, activation_heatmap, input_image_figure, probability_bars
from app.ui import inputs
from app.ui.components import colormap_dropdown, error_alert, figure_card, labelled, output_unit_names, verdict
from app.ui.links import first, parse_flag, parse_int, query_string
from app.ui.page import PageIds, frame, model_layers, open_layer, open_model, register_url_sync, reports_errors
from app.ui.unit_panel import unit_panel

dash.register_page(__name__, path="/", name="Explore", title="Explore · CNN Activation Explorer", nav_order=0)

IDS = PageIds("explore")
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
MODEL_INFO = "explore-model-info"
UNIT_PANEL = "explore-unit-panel"

register_url_sync(IDS)


def _model_info(loaded) -> str:
    accuracy = loaded.meta.get("metrics", {}).get("test_accuracy")
    parts = [f"{loaded.engine.n_images} test images", f"{len(loaded.class_names)} classes"]
    if accuracy is not None:
        parts.append(f"test accuracy {accuracy:.1%}")
    return " · ".join(parts)


def layout(model=None, layer=None, image=None, cmap=None, reverse=None, scale=None, **_other):
    """The page, opened in the state the query string describes (invalid values fall back to defaults)."""
    choice = open_model(first(model))
    layers, layer_value = choice.layer_choice(first(layer))
    image_max, info = 0, ""
    image_index = parse_int(image, None) if first(image) else 0
    if choice.loaded is not None:
        image_max = choice.loaded.engine.n_images - 1
        if image_index is None:
            choice.messages.append(error_alert(f"Image {inputs.shown(first(image))} is not a whole number; showing 0."))
            image_index = 0
        elif not 0 <= image_index <= image_max:
            choice.messages.append(error_alert(f"Image {image_index} is out of range 0-{image_max}; showing 0."))
            image_index = 0
        info = _model_info(choice.loaded)
    image_index = image_index or 0
    image_controls = dbc.InputGroup(
        [
            dbc.Button("◀", id=PREVIOUS, color="secondary", outline=True, title="previous image"),
            dbc.Input(id=IMAGE, type="number", min=0, max=image_max, step=1, value=image_index, debounce=0.3),
            dbc.Button("▶", id=NEXT, color="secondary", outline=True, title="next image"),
            dbc.Button("random", id=RANDOM, color="secondary", outline=True, title="random image"),
        ],
        size="sm",
    )
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled("Test image", image_controls, 3),
        labelled("Colormap", colormap_dropdown(CMAP, first(cmap)), 2),
        dbc.Col(
            [
                dbc.Switch(id=REVERSE, label="reverse", value=parse_flag(reverse), className="small"),
                dbc.Switch(id=SCALE, label="standardise", value=parse_flag(scale), className="small"),
            ],
            xs=12, sm=6, lg=2,
        ),
    ]
    figures = dbc.Row(
        [
            dbc.Col(
                [
                    figure_card(INPUT_IMAGE, "260px", toolbar=False),
                    html.Div(id=IMAGE_INFO, className="small mb-2"),
                    figure_card(PROBABILITIES, "260px", toolbar=False),
                ],
                md=3,
            ),
            dbc.Col([figure_card(HEATMAP, "72vh"), html.Div(id=UNIT_PANEL)], md=9),
        ]
    )
    return frame(IDS, choice, controls, html.Div(info, id=MODEL_INFO, className="small text-muted mb-2"), figures,
                 model_width=2)


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(IMAGE, "max"),
    Output(MODEL_INFO, "children"),
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, current_layer):
    """A new model: its layers (keeping the current one if it has it), its test-set size and summary."""
    try:
        loaded, options, layer = model_layers(model_name, current_layer)
    except ExplorerError as exc:
        return [], None, 0, str(exc)
    return options, layer, loaded.engine.n_images - 1, _model_info(loaded)


# Previous/next wrap around the test set; random picks any image; a malformed number counts as 0. Resolved in the
# browser (assets/explorer.js), so a click costs one round trip, the render's, not two.
clientside_callback(
    ClientsideFunction(namespace="explorer", function_name="stepImage"),
    Output(IMAGE, "value"),
    Input(PREVIOUS, "n_clicks"),
    Input(NEXT, "n_clicks"),
    Input(RANDOM, "n_clicks"),
    State(IMAGE, "value"),
    State(IMAGE, "max"),
    prevent_initial_call=True,
)


@callback(
    Output(HEATMAP, "figure"),
    Output(INPUT_IMAGE, "figure"),
    Output(PROBABILITIES, "figure"),
    Output(IMAGE_INFO, "children"),
    Output(IDS.query, "data"),
    Output(IDS.message, "children", allow_duplicate=True),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(IMAGE, "value"),
    Input(CMAP, "value"),
    Input(REVERSE, "value"),
    Input(SCALE, "value"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(6)
def render(model_name, layer_name, image, cmap, reverse, scale):
    """The grid, input image and probabilities of the selected view, and the query string that reopens it."""
    if not model_name or not layer_name or image is None:
        raise InvalidInput("Choose a model, a layer and an image number.")
    loaded, info = open_layer(model_name, layer_name)
    engine = loaded.engine
    index = engine.check_image(inputs.integer(image, "the test image"))
    cmap = inputs.choice(cmap, "the colormap", COLORMAPS)
    reverse, scale = inputs.flag(reverse), inputs.flag(scale)
    grid, grid_layout = engine.tiled(info.name, index, scaled=scale)
    engine.prefetch_neighbours(index)  # in the background: "previous" and "next" then find their pass cached
    probabilities = engine.probabilities(index)
    label = int(loaded.labels[index])
    unit = "maps" if info.is_map else "nodes"
    heatmap = activation_heatmap(
        grid,
        grid_layout,
        cmap,
        reverse,
        title=f"{info.label}: {info.n_units} {unit} of image {index}" + (" (standardised)" if scale else ""),
        unit_names=output_unit_names(loaded, info.name),
    )
    names = loaded.class_names
    query = query_string(
        {"model": loaded.name, "layer": info.name, "image": index, "cmap": cmap, "reverse": reverse, "scale": scale}
    )
    return (
        heatmap,
        input_image_figure(loaded.images[index], f"input · class {names[label]}"),
        probability_bars(probabilities, names, label),
        [html.Span(f"Image {index}: "), *verdict(names, label, probabilities)],
        query,
        [],
    )


@callback(
    Output(UNIT_PANEL, "children"),
    Input(HEATMAP, "clickData"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    prevent_initial_call=True,
)
def on_unit_click(click_data, model_name, layer_name):
    """A click on a map or node: the test images that activate that unit most (see :mod:`app.ui.unit_panel`).

    A new model or layer clears the panel, which would otherwise describe a unit no longer shown.
    """
    if ctx.triggered_id in (IDS.model, LAYER):
        return []
    return unit_panel("explore", model_name, layer_name, click_data)
