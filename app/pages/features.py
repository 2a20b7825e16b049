"""Features: what each unit of a layer looks for, and where the model looks in an image.

Top: the optimal input of every unit of a layer (activation maximisation), laid out like the layer's activation
grid so map k's optimal input sits where map k sits; dead units (never firing on the test set) are crossed out; the
first conv layer also shows its kernels. The whole layer is computed once in the background and shared by every
user (a progress bar shows meanwhile). Clicking a unit shows its optimal input next to its activation on the chosen
test image, its top test images cropped to its receptive field around where each peaks, and the test images that
activate it most. Bottom: attribution maps (gradient, SmoothGrad, Grad-CAM,
integrated gradients) of the chosen image for a class, or for two classes side by side (4 and 9 unless chosen),
drawn over the digit with a titled colour bar. The view lives in the URL
(``/features?model=mnist-cnn&layer=Conv2D_2&image=12&method=gradcam&target=9``, ``&pair=1&pair_a=3&pair_b=8``).
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from app.context import app_context
from app.core import attribution as attr
from app.core.errors import ExplorerError, InvalidInput
from app.core.grid import default_per_row, layout_for, tile
from app.figures.charts import fitted_title, input_image_figure, note_figure
from app.figures.features import (
    METHOD_LABELS,
    attribution_figure,
    completeness_sentence,
    crops_figure,
    feature_grid,
    kernel_grid,
)
from app.figures.grids import activation_heatmap
from app.ui import inputs
from app.ui.components import TOOLBAR, class_options, error_alert, kept_choice, labelled
from app.ui.links import query_string
from app.ui.page import (
    PageIds,
    frame,
    model_layers,
    open_layer,
    open_view,
    register_url_sync,
    reports_errors,
)
from app.ui.unit_panel import chosen_unit, unit_from_click, unit_panel
from app.views.attribution import explain
from app.views.explore import numbered_test_image
from app.views.features import (
    DEFAULT_PAIR,
    FeaturesView,
    layer_optimal_inputs,
    progress_sentence,
    unit_optimal_input,
    unit_top_crops,
)

dash.register_page(__name__, path="/features", name="Features", title="Features · CNN Activation Explorer",
                   nav_order=6)

IDS = PageIds("features")
LAYER = "features-layer"
IMAGE = "features-image"
GRID = "features-grid"
KERNELS = "features-kernels"
PROGRESS = "features-progress"
POLL = "features-poll"
UNIT = "features-unit"
METHOD = "features-method"
TARGET = "features-target"
CAM_LAYER = "features-cam-layer"
PAIR = "features-pair"
PAIR_A = "features-pair-a"
PAIR_B = "features-pair-b"
ATTRIBUTION = "features-attribution"
ATTRIBUTION_MESSAGE = "features-attribution-message"
CROPS = "features-crops"
CHOSEN_UNIT = "features-chosen-unit"  # the clicked unit, in the URL as unit=: {"unit": 5} or None

POLL_MS = 1000
# The characters of an attribution title's line that fit its chart in an 800 px window (two charts to a row).
ATTRIBUTION_TITLE_CHARS = 46

register_url_sync(IDS)


def _cam_options(loaded) -> list[dict]:
    return [{"label": info.label, "value": info.name} for info in loaded.engine.layers
            if info.is_map and attr.reaches_output(info.name)]


def _cam_choice(value, loaded, options: list[dict]):
    """``value`` if the model offers it, else the core's default Grad-CAM layer (one with maps of real resolution,
    not the last and coarsest one)."""
    default = attr.default_cam_layer(loaded.engine)
    names = [option["value"] for option in options]
    return kept_choice(value, options, names.index(default) if default in names else len(names) - 1)


QUERY_KEYS = FeaturesView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`FeaturesView.from_query`; what the model
    cannot show falls back to defaults, with a notice)."""
    view, choice = open_view(FeaturesView, query)
    layers, layer_value = choice.layer_choice(view.layer, "Conv2D_2")
    classes, pair_classes, cam_options, cam_value, image_max = [], [], [], None, 0
    if choice.loaded is not None:
        classes, cam_options = class_options(choice.loaded.class_names, predicted=True), _cam_options(choice.loaded)
        pair_classes = class_options(choice.loaded.class_names)
        cam_value = _cam_choice(view.cam, choice.loaded, cam_options)
        image_max = choice.loaded.engine.n_images - 1
    image_index = min(view.image, image_max)
    method_value = view.method
    target_value = kept_choice(view.target, classes, 0)
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled("Test image", dbc.Input(id=IMAGE, type="number", min=0, max=image_max, step=1, value=image_index,
                                         debounce=0.3, size="sm"), 2),
    ]
    feature_section = [
        html.Div(id=PROGRESS),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=True),
        dbc.Row(
            [
                dbc.Col(dbc.Card(dbc.CardBody(dcc.Graph(id=GRID, style={"height": "560px"}, config=TOOLBAR)),
                                 className="mb-3"), lg=8),
                dbc.Col(html.Div(id=KERNELS), lg=4),
            ],
            className="g-2",
        ),
        html.Div(id=UNIT),
        dcc.Store(id=CHOSEN_UNIT, data=None if view.unit is None else {"unit": view.unit}),
    ]
    attribution_section = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Where the model looks: attribution of the test image"),
                dbc.Row(
                    [
                        labelled("Method", dcc.Dropdown(
                            id=METHOD, options=[{"label": label, "value": value}
                                                for value, label in METHOD_LABELS.items()],
                            value=method_value, clearable=False), 2),
                        labelled("Class", dcc.Dropdown(id=TARGET, options=classes, value=target_value,
                                                       clearable=False, disabled=view.pair), 2),
                        labelled("Grad-CAM layer", dcc.Dropdown(id=CAM_LAYER, options=cam_options, value=cam_value,
                                                                clearable=False), 3),
                        labelled("", dbc.Checkbox(id=PAIR, label="two classes side by side", value=view.pair), 2),
                        labelled("Left class", dcc.Dropdown(
                            id=PAIR_A, options=pair_classes, value=kept_choice(view.pair_a, pair_classes, 0),
                            clearable=False, disabled=not view.pair), 1),
                        labelled("Right class", dcc.Dropdown(
                            id=PAIR_B, options=pair_classes, value=kept_choice(view.pair_b, pair_classes, 1),
                            clearable=False, disabled=not view.pair), 1),
                    ],
                    className="g-2 align-items-end",
                ),
                html.Div(id=ATTRIBUTION_MESSAGE),
                dcc.Loading(html.Div(id=ATTRIBUTION), delay_show=300),
            ]
        ),
        className="mb-3 mt-3",
    )
    return frame(IDS, choice, controls, *feature_section, attribution_section)


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(TARGET, "options"),
    Output(TARGET, "value"),
    Output(CAM_LAYER, "options"),
    Output(CAM_LAYER, "value"),
    Output(IMAGE, "max"),
    Output(PAIR_A, "options"),
    Output(PAIR_A, "value"),
    Output(PAIR_B, "options"),
    Output(PAIR_B, "value"),
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    State(CAM_LAYER, "value"),
    State(PAIR_A, "value"),
    State(PAIR_B, "value"),
    prevent_initial_call=True,
)
def on_features_model_change(model_name, layer_name, cam_layer, pair_a, pair_b):
    """A new model: its layers, classes and Grad-CAM layers, keeping the current choices where they exist."""
    try:
        loaded, layers, layer = model_layers(model_name, layer_name)
    except ExplorerError:
        return [], None, [], -1, [], None, 0, [], None, [], None
    cams, pair_classes = _cam_options(loaded), class_options(loaded.class_names)
    return (layers, layer, class_options(loaded.class_names, predicted=True), -1, cams,
            _cam_choice(cam_layer, loaded, cams), loaded.engine.n_images - 1,
            pair_classes, kept_choice(pair_a, pair_classes, 0), pair_classes, kept_choice(pair_b, pair_classes, 1))


@callback(
    Output(TARGET, "disabled"),
    Output(PAIR_A, "disabled"),
    Output(PAIR_B, "disabled"),
    Input(PAIR, "value"),
    prevent_initial_call=True,
)
def on_pair_toggle(pair):
    """Side by side, the two class choices apply and the single one does not; alone, the other way round."""
    side_by_side = inputs.flag(pair)
    return side_by_side, not side_by_side, not side_by_side


@callback(
    Output(GRID, "figure"),
    Output(KERNELS, "children"),
    Output(PROGRESS, "children"),
    Output(POLL, "disabled"),
    Output(IDS.message, "children", allow_duplicate=True),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(POLL, "n_intervals"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(5, blank=(note_figure("Nothing to show."), [], [], True))
def render_features(model_name, layer_name, _ticks):
    """The layer's grid of optimal inputs once computed; meanwhile its progress (polled every second)."""
    loaded, info = open_layer(model_name, layer_name)
    job = layer_optimal_inputs(app_context().feature_jobs, loaded, info.name)
    if job.status != "done":
        # before the first step (process start, dead units) the bar runs full width, faint: alive, not measured
        measured = job.total > 0
        bar = html.Div([
            html.Div([html.Span(progress_sentence(job, info.name), className="fw-semibold"),
                      " It runs in the background: this page updates itself, and every other viewer gets the "
                      "result at once."], className="small mb-1"),
            dbc.Progress(value=round(100 * job.fraction) if measured else 100, striped=True, animated=True,
                         color="primary" if measured else "secondary", className="mb-2", style={"height": "12px"}),
        ])
        return note_figure(f"Computing {info.name}…"), no_update, bar, False, []
    result = job.result
    models = app_context().gradient_models.for_model(loaded)
    dead = int(result.dead.sum())
    title = (f"optimal input of each {'map' if info.is_map else 'node'} of {info.name}"
             + (f" · {dead} dead (never fire on the test set), crossed out" if dead else ""))
    figure, _ = feature_grid(result.images, result.dead, info.is_map, (models.low, models.high), title)
    kernels = []
    if result.kernels is not None:
        kernels = dbc.Card(dbc.CardBody(dcc.Graph(figure=kernel_grid(result.kernels, f"kernels of {info.name}"),
                                                  style={"height": "560px"}, config=TOOLBAR)), className="mb-3")
    summary = html.Div(f"{info.n_units - dead} of {info.n_units} units optimised; click one to see it next to its "
                       "top test images.", className="small text-muted mb-1")
    return figure, kernels, summary, True, []


def _crops_title(word: str, unit: int, crops) -> str:
    """``top 9 test images of map 5, cropped to its 8×8 px receptive field around its peak`` (a node: whole)."""
    shown = f"top {len(crops.indices)} test images of {word} {unit}"
    if crops.field.whole:
        return f"{shown} (a {word} sees the whole image)"
    height, width = crops.field.size
    return f"{shown}, cropped to its {height}×{width} px receptive field around its peak"


@callback(
    Output(CHOSEN_UNIT, "data"),
    Input(GRID, "clickData"),
    State(IDS.model, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def on_grid_click(click_data, model_name, layer_name):
    """A click on the grid chooses the unit under it (a click on padding changes nothing)."""
    try:
        loaded, info = open_layer(model_name, layer_name)
    except ExplorerError:
        return no_update
    height, width = loaded.images.shape[1:3]
    unit = unit_from_click(click_data, layout_for((height, width, info.n_units),
                                                  default_per_row(info.n_units, info.is_map)))
    return no_update if unit is None else {"unit": unit}


@callback(
    Output(CHOSEN_UNIT, "data", allow_duplicate=True),
    Input(LAYER, "value"),
    prevent_initial_call=True,
)
def on_layer_change(_layer):
    """Another layer: its units are others, so none is chosen."""
    return None


@callback(
    Output(UNIT, "children"),
    Input(CHOSEN_UNIT, "data"),
    Input(IMAGE, "value"),
    State(IDS.model, "value"),
    State(LAYER, "value"),
)
def show_unit(chosen, image, model_name, layer_name):
    """The chosen unit (clicked, or named by the link): its optimal input, its activation on the chosen test image,
    its top test images."""
    unit = chosen_unit(chosen)
    if unit is None:
        return []
    try:
        loaded, info = open_layer(model_name, layer_name)
        if not 0 <= unit < info.n_units:
            raise InvalidInput(f"unit {unit} is out of range: {info.name} has units 0-{info.n_units - 1}")
        index = numbered_test_image(loaded, image).subject
        context = app_context()
        feature = unit_optimal_input(context.feature_jobs, context.statistics, context.gradient_models, loaded,
                                     info.name, unit).feature
        activation = loaded.engine.activations(info.name, index)[..., unit]
        crops = None if feature.dead else unit_top_crops(context.statistics, loaded, info.name, unit)
    except ExplorerError as exc:
        return error_alert(exc)
    word = "map" if info.is_map else "node"
    if feature.dead:
        optimal = note_figure(f"{word} {unit} is dead: its output is 0 on every test image, so no input raises it.")
    else:
        # the objective under the figures, not in the title: a second title line overlaps a square image
        optimal = input_image_figure(feature.image, f"optimal input of {word} {unit}")
    if info.is_map:
        grid, grid_layout = tile(activation[..., None])
        response = activation_heatmap(grid, grid_layout, "viridis", title=f"{word} {unit} on test image {index}")
    else:
        response = note_figure(f"node {unit} on test image {index}: {float(activation):.4g}")
    figures = dbc.Row([
        dbc.Col(dcc.Graph(figure=optimal, style={"height": "300px"}, config=TOOLBAR), md=4),
        dbc.Col(dcc.Graph(figure=response, style={"height": "300px"}, config=TOOLBAR), md=4),
    ], className="g-2")
    if crops is not None:
        figures = html.Div([figures, dcc.Graph(id=CROPS, figure=crops_figure(
            crops.crops, crops.indices, (float(loaded.images.min()), float(loaded.images.max())),
            _crops_title(word, unit, crops)), style={"height": "200px"}, config=TOOLBAR)])
    api = f"/api/models/{loaded.name}/features" + query_string({"layer": info.name, "unit": unit})
    objective = [] if feature.dead else html.Div(
        f"Its optimal input raises the {word}'s objective to {feature.objective:.3g} (from "
        f"{feature.start_objective:.3g} for a plain grey image).", className="small text-muted")
    return dbc.Card(dbc.CardBody([
        html.Div([html.H6(f"{word.capitalize()} {unit} of {info.name}", className="d-inline me-2"),
                  html.A("JSON", href=api, target="_blank", className="small")]),
        objective,
        figures,
        unit_panel("features", loaded.name, info.name, unit),
    ]), className="mb-3")


@callback(
    Output(ATTRIBUTION, "children"),
    Output(ATTRIBUTION_MESSAGE, "children"),
    Input(IDS.model, "value"),
    Input(IMAGE, "value"),
    Input(METHOD, "value"),
    Input(TARGET, "value"),
    Input(CAM_LAYER, "value"),
    Input(PAIR, "value"),
    Input(PAIR_A, "value"),
    Input(PAIR_B, "value"),
)
@reports_errors(2, blank=([],))
def render_attribution(model_name, image, method, target, cam_layer, pair, pair_a, pair_b):
    """The attribution map of the test image for the chosen class (default: the predicted one), or for the left
    and right classes side by side, over the digit; for integrated gradients, the check that the attributions add
    up to the logit's change from a black image, in words."""
    loaded = app_context().store.get(inputs.name(model_name, "model"))
    shown = numbered_test_image(loaded, image)
    method = attr.check_method(method)
    n_classes = len(loaded.class_names)
    cam = loaded.engine.layer(inputs.name(cam_layer, "Grad-CAM layer")).name if method == "gradcam" else None
    if inputs.flag(pair):
        classes = [inputs.integer(pair_a, "the left class", 0, n_classes - 1),
                   inputs.integer(pair_b, "the right class", 0, n_classes - 1)]
    else:
        classes = [inputs.integer(target, "the class")]
    columns = []
    for class_index in classes:
        explained = explain(loaded, app_context().gradient_models, shown, method, class_index, cam)
        result = explained.result
        lines = [f"{METHOD_LABELS[method]} · class {loaded.class_names[explained.target]} · logit {result.logit:.3g}"]
        if method == "integrated_gradients":
            lines.append(completeness_sentence(result.extras["attribution_sum"], result.extras["logit_difference"]))
        # each line wrapped to what 5/12 of an 800 px window holds
        title = "<br>".join(fitted_title(line, ATTRIBUTION_TITLE_CHARS) for line in lines)
        figure = attribution_figure(shown.pixels, result.map, method == "integrated_gradients", title, method)
        columns.append(dbc.Col(dcc.Graph(figure=figure, style={"height": "380px"}, config=TOOLBAR), md=5))
    caption = (f"test image {shown.key}, true class {loaded.class_names[shown.label]}, predicted "
               f"{loaded.class_names[explained.predicted]}")
    return [html.Div(caption, className="small text-muted mb-1"), dbc.Row(columns, className="g-2")], []


@callback(
    Output(IDS.query, "data"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(IMAGE, "value"),
    Input(METHOD, "value"),
    Input(TARGET, "value"),
    Input(CAM_LAYER, "value"),
    Input(PAIR, "value"),
    Input(PAIR_A, "value"),
    Input(PAIR_B, "value"),
    Input(CHOSEN_UNIT, "data"),
)
def sync_features_query(model_name, layer_name, image, method, target, cam_layer, pair, pair_a, pair_b,
                        chosen=None):
    """The query string that reopens this view (a value the page does not offer falls back to its default)."""
    return FeaturesView(
        model=inputs.name_or_none(model_name), layer=inputs.name_or_none(layer_name),
        image=inputs.integer_or_none(image, 0) or 0, method=method if method in attr.METHODS else attr.METHODS[0],
        target=inputs.integer_or_none(target, 0), cam=inputs.name_or_none(cam_layer), pair=inputs.flag(pair),
        pair_a=_class_or(pair_a, DEFAULT_PAIR[0]), pair_b=_class_or(pair_b, DEFAULT_PAIR[1]),
        unit=chosen_unit(chosen),
    ).to_query()


def _class_or(value, default: int) -> int:
    """A class dropdown's value, or ``default`` when it holds none (or something forged)."""
    chosen = inputs.integer_or_none(value, 0)
    return default if chosen is None else chosen
