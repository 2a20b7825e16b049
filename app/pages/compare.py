"""Compare page: up to 8 test images side by side at one layer, on ONE shared colour scale, plus B − A.

The view lives in the URL (``/compare?model=mnist-cnn&layer=Conv2D_3&images=12,7,300&cmap=jet&a=12&b=7&unit=5``). Every
image shows its input, its grid, the predicted class and confidence; the grids share zmin/zmax computed over all of
them, so a colour means the same value everywhere. Clicking a map or node lists its top test images.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from app import services
from app.core import attribution
from app.core.errors import ExplorerError, InvalidInput
from app.core.finder import parse_indices
from app.figures.comparison import difference_heatmap, value_range
from app.figures.features import METHOD_LABELS, attribution_figure
from app.figures.heatmaps import COLORMAPS, activation_heatmap, input_image_figure, note_figure
from app.ui import inputs
from app.ui.components import TOOLBAR, colormap_dropdown, error_alert, labelled, output_unit_names, verdict
from app.ui.links import MAX_COMPARE_IMAGES, first, parse_int, query_string, with_unit
from app.ui.page import PageIds, frame, model_layers, open_layer, open_model, register_url_sync, reports_errors
from app.ui.unit_panel import (
    UnitIds,
    chosen_unit,
    clicked_unit,
    layer_layout,
    register_unit_scroll,
    unit_area,
    unit_on_layer,
    unit_panel,
)

dash.register_page(__name__, path="/compare", name="Compare", title="Compare · CNN Activation Explorer", nav_order=1)

DEFAULT_IMAGES = "0,1,2"
MAX_IMAGES_TEXT = 200  # 8 image numbers with commas take ~40 characters
MAX_PROBLEMS_SHOWN = 5
IDS = PageIds("compare")
UNIT = UnitIds("compare")
VIEW = "compare-view"  # the query string of the view without the chosen unit
LAYER = "compare-layer"
IMAGES = "compare-images"
CMAP = "compare-cmap"
CARDS = "compare-cards"
GRID = "compare-grid"  # pattern-matching: {"type": GRID, "index": position}
INPUT = "compare-input"  # pattern-matching: {"type": INPUT, "index": position}
ATTRIBUTION_METHOD = "compare-attribution-method"
ATTRIBUTION_CLASS = "compare-attribution-class"
DIFF_A = "compare-diff-a"
DIFF_B = "compare-diff-b"
DIFFERENCE = "compare-difference"
DIFF_MESSAGE = "compare-diff-message"
UNIT_PANEL = UNIT.panel
GRID_HEIGHT_PX = 380
# A card's grid width on a 1400 px window, by the card's column width (of 12), for the maps' number labels.
GRID_WIDTH_PX = {3: 300, 6: 620}

register_url_sync(IDS)
register_unit_scroll(UNIT)


def layout(model=None, layer=None, images=None, cmap=None, a=None, b=None, unit=None, **_other):
    """The page, opened in the state the query string describes (invalid values fall back to defaults)."""
    choice = open_model(first(model))
    layers, layer_value = choice.layer_choice(first(layer), "Conv2D_3")
    chosen = choice.unit_choice(first(unit), layer_value)
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled(
            f"Test images (up to {MAX_COMPARE_IMAGES}, e.g. 12, 7, 300)",
            dbc.Input(id=IMAGES, type="text", value=first(images) or DEFAULT_IMAGES, debounce=0.5, size="sm"),
            4,
        ),
        labelled("Colormap", colormap_dropdown(CMAP, first(cmap)), 2),
        labelled("Where the model looks", dcc.Dropdown(
            id=ATTRIBUTION_METHOD, clearable=False, value="",
            options=[{"label": "off", "value": ""}] + [{"label": METHOD_LABELS[m], "value": m}
                                                        for m in attribution.METHODS]), 2),
        labelled("for", dcc.Dropdown(id=ATTRIBUTION_CLASS, clearable=False, value=-1, options=_class_options(choice)),
                 2),
    ]
    difference = dbc.Card(
        dbc.CardBody(
            [
                dbc.Row(
                    [
                        dbc.Col(html.H6("Difference B − A (red: stronger in B, blue: stronger in A)"), width="auto"),
                        labelled("A", dcc.Dropdown(id=DIFF_A, value=parse_int(a, None), clearable=False), 2),
                        labelled("B", dcc.Dropdown(id=DIFF_B, value=parse_int(b, None), clearable=False), 2),
                    ],
                    className="g-2 align-items-end",
                ),
                html.Div(id=DIFF_MESSAGE),
                dcc.Loading(dcc.Graph(id=DIFFERENCE, style={"height": "480px"}, config=TOOLBAR),
                            delay_show=300),
            ]
        ),
        className="mb-3",
    )
    return frame(IDS, choice, controls, html.Div(id=CARDS), unit_area(UNIT, chosen), difference, dcc.Store(id=VIEW))


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, current_layer):
    """A new model: its layers, keeping the current one if it has it."""
    try:
        _, options, layer = model_layers(model_name, current_layer)
    except ExplorerError:
        return [], None
    return options, layer


def _class_options(choice) -> list[dict]:
    names = choice.loaded.class_names if choice.loaded is not None else []
    return [{"label": "predicted", "value": -1}] + [{"label": name, "value": i} for i, name in enumerate(names)]


def _image_numbers(images_text, n_images: int) -> tuple[list[int], list[str]]:
    """The image numbers typed in the images field (see :func:`app.core.finder.parse_indices`), the text checked
    first: what arrives may be any JSON, or text long enough to produce a problem per word."""
    text = inputs.text("" if images_text is None else images_text, "the image list", MAX_IMAGES_TEXT)
    return parse_indices(text, n_images, MAX_COMPARE_IMAGES)


def _image_card(position, index, loaded, grid_figure, column_width):
    """One image's column: input, predicted class and confidence, its grid (clickable)."""
    probabilities = loaded.engine.probabilities(index)
    label = int(loaded.labels[index])
    body = [
        dcc.Graph(id={"type": INPUT, "index": position}, figure=input_image_figure(loaded.images[index]),
                  style={"height": "140px"}, config={"displayModeBar": False, "staticPlot": True}),
        html.Div([html.B(f"#{index}"), html.Span(" · "), *verdict(loaded.class_names, label, probabilities)],
                 className="small"),
        dcc.Graph(id={"type": GRID, "index": position}, figure=grid_figure, style={"height": f"{GRID_HEIGHT_PX}px"},
                  config=TOOLBAR),
    ]
    return dbc.Col(dbc.Card(dbc.CardBody(body, className="p-2"), className="mb-3"), md=column_width)


@callback(
    Output(CARDS, "children"),
    Output(DIFF_A, "options"),
    Output(DIFF_A, "value"),
    Output(DIFF_B, "options"),
    Output(DIFF_B, "value"),
    Output(IDS.message, "children", allow_duplicate=True),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(IMAGES, "value"),
    Input(CMAP, "value"),
    State(DIFF_A, "value"),
    State(DIFF_B, "value"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(6, blank=([], [], None, [], None))
def render_images(model_name, layer_name, images_text, cmap, current_a, current_b):
    """Every image's input and grid on one colour scale (zmin/zmax over all grids), and the A/B choices."""
    if not model_name or not layer_name:
        return (no_update,) * 5 + (error_alert("Choose a model and a layer."),)
    loaded, info = open_layer(model_name, layer_name)
    engine = loaded.engine
    cmap = inputs.choice(cmap, "the colormap", COLORMAPS)
    indices, problems = _image_numbers(images_text, engine.n_images)
    if not indices:
        raise InvalidInput("type at least one test-image number, e.g. 12, 7, 300")
    tiles = [engine.tiled(info.name, index) for index in indices]
    zrange = value_range([grid for grid, _ in tiles])
    column_width = 3 if len(indices) > 2 else 6
    cards = [
        _image_card(
            position, index, loaded,
            activation_heatmap(grid, grid_layout, cmap, zrange=zrange, title=f"image {index} · {info.name}",
                               unit_names=output_unit_names(loaded, info.name),
                               size_px=(GRID_WIDTH_PX[column_width], GRID_HEIGHT_PX)),
            column_width,
        )
        for position, ((grid, grid_layout), index) in enumerate(zip(tiles, indices, strict=True))
    ]
    options = [{"label": f"#{index}", "value": index} for index in indices]
    current_a, current_b = inputs.integer_or_none(current_a), inputs.integer_or_none(current_b)
    a = current_a if current_a in indices else indices[0]
    b = current_b if current_b in indices and current_b != a else next((i for i in indices if i != a), a)
    shown = problems[:MAX_PROBLEMS_SHOWN] + ([f"{len(problems) - MAX_PROBLEMS_SHOWN} more"]
                                             if len(problems) > MAX_PROBLEMS_SHOWN else [])
    message = [error_alert("; ".join(shown))] if problems else []
    return dbc.Row(cards, className="g-2"), options, a, options, b, message


@callback(
    Output(DIFFERENCE, "figure"),
    Output(VIEW, "data"),
    Output(DIFF_MESSAGE, "children"),
    Input(DIFF_A, "value"),
    Input(DIFF_B, "value"),
    State(IDS.model, "value"),
    State(LAYER, "value"),
    State(IMAGES, "value"),
    State(CMAP, "value"),
)
@reports_errors(3, blank=({}, no_update))
def render_difference(a, b, model_name, layer_name, images_text, cmap):
    """B − A on the diverging RdBu scale centred on 0, and the query string that reopens the whole view (the chosen
    unit is added by :func:`sync_query`)."""
    if a is None or b is None or not model_name or not layer_name:
        return {}, no_update, []
    loaded, info = open_layer(model_name, layer_name)
    engine = loaded.engine
    image_a = engine.check_image(inputs.integer(a, "image A"))
    image_b = engine.check_image(inputs.integer(b, "image B"))
    indices, _ = _image_numbers(images_text, engine.n_images)
    query = query_string(
        {"model": loaded.name, "layer": info.name, "images": ",".join(map(str, indices)),
         "cmap": cmap if cmap in COLORMAPS else None, "a": image_a, "b": image_b}
    )
    if image_a == image_b:
        reason = (f"A and B are the same image (#{image_a}): its difference with itself is zero everywhere. "
                  + ("Choose two different images." if len(set(indices)) > 1 else "Add a second image to compare."))
        return note_figure(reason), query, []
    difference = engine.activations(info.name, image_b) - engine.activations(info.name, image_a)
    return difference_heatmap(difference, f"image {image_b} − image {image_a} · {info.name}"), query, []


@callback(
    Output(UNIT.unit, "data"),
    Input({"type": GRID, "index": ALL}, "clickData"),
    Input(DIFFERENCE, "clickData"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    State(UNIT.unit, "data"),
    prevent_initial_call=True,
)
def on_unit_choice(_grid_clicks, _difference_click, model_name, layer_name, current):
    """A click on a map or node of any grid chooses it (new cards, not clicks, change nothing); a new model or layer
    keeps the chosen unit where the layer has it."""
    if ctx.triggered_id in (IDS.model, LAYER):
        return unit_on_layer(current, model_name, layer_name)
    if ctx.triggered_id is None or not ctx.triggered:
        return no_update
    return clicked_unit(ctx.triggered[0]["value"], layer_layout(model_name, layer_name))


@callback(
    Output(UNIT_PANEL, "children"),
    Input(UNIT.unit, "data"),
    State(IDS.model, "value"),
    State(LAYER, "value"),
)
def on_unit_change(unit, model_name, layer_name):
    """The test images that activate the chosen unit most (see :mod:`app.ui.unit_panel`); none chosen, no panel."""
    return unit_panel("compare", model_name, layer_name, chosen_unit(unit))


@callback(
    Output(IDS.query, "data"),
    Input(VIEW, "data"),
    Input(UNIT.unit, "data"),
)
def sync_query(view, unit):
    """The query string that reopens the view and its chosen unit."""
    return with_unit(view, chosen_unit(unit)) or no_update


@callback(
    Output({"type": INPUT, "index": ALL}, "figure"),
    Input(ATTRIBUTION_METHOD, "value"),
    Input(ATTRIBUTION_CLASS, "value"),
    Input({"type": INPUT, "index": ALL}, "id"),
    State(IDS.model, "value"),
    State(IMAGES, "value"),
    prevent_initial_call=True,
)
def overlay_inputs(method, target, shown_inputs, model_name, images_text):
    """Each card's input with where the model looks for the chosen class (default: each image's predicted class),
    or the plain input when the method is off; redrawn when the cards are."""
    count = len(shown_inputs) if isinstance(shown_inputs, list) else 0
    try:
        loaded = services.store().get(inputs.name(model_name, "model"))
        indices, _ = _image_numbers(images_text, loaded.engine.n_images)
        if len(indices) != count:  # the cards are being redrawn for another list: the new cards will ask again
            return [no_update] * count
        if not method:
            return [input_image_figure(loaded.images[index]) for index in indices]
        method = attribution.check_method(method)
        target = inputs.integer(target, "the class", -1, len(loaded.class_names) - 1)
        models = services.gradient_models().for_model(loaded)
        figures = []
        for index in indices:
            explained = int(loaded.engine.probabilities(index).argmax()) if target == -1 else target
            result = attribution.attribute(models, loaded.images[index], method, explained)
            figures.append(attribution_figure(loaded.images[index], result.map, method == "integrated_gradients",
                                              f"{METHOD_LABELS[method]} · class {loaded.class_names[explained]}"))
        return figures
    except ExplorerError:
        return [no_update] * count
