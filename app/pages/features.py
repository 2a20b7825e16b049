"""Features: what each unit of a layer looks for, and where the model looks in an image.

Top: the optimal input of every unit of a layer (activation maximisation), laid out like the layer's activation
grid so map k's optimal input sits where map k sits; dead units (never firing on the test set) are crossed out; the
first conv layer also shows its kernels. The whole layer is computed once in the background and shared by every
user (a progress bar shows meanwhile). Clicking a unit shows its optimal input next to its activation on the chosen
test image and the test images that activate it most. Bottom: attribution maps (gradient, SmoothGrad, Grad-CAM,
integrated gradients) of the chosen image for a class, or for class 4 and class 9 side by side. The view lives in
the URL (``/features?model=mnist-cnn&layer=Conv2D_2&image=12&method=gradcam&target=9``).
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from app import services
from app.core import attribution as attr
from app.core.errors import ExplorerError, InvalidInput
from app.core.features import unit_feature, unit_of
from app.core.grid import default_per_row, layout_for, tile
from app.figures.features import METHOD_LABELS, attribution_figure, feature_grid, kernel_grid
from app.figures.heatmaps import activation_heatmap, input_image_figure, note_figure
from app.ui import inputs
from app.ui.components import TOOLBAR, error_alert, labelled
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
from app.ui.unit_panel import unit_from_click, unit_panel
from app.views.attribution import explain
from app.views.features import FeaturesView
from app.views.images import of_subject

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
ATTRIBUTION = "features-attribution"
ATTRIBUTION_MESSAGE = "features-attribution-message"

POLL_MS = 1000
PAIR_CLASSES = (4, 9)  # the blog's 4 that looks like a 9

register_url_sync(IDS)


def _class_options(loaded) -> list[dict]:
    return [{"label": "predicted class", "value": -1}] + [
        {"label": name, "value": i} for i, name in enumerate(loaded.class_names)]


def _cam_options(loaded) -> list[dict]:
    return [{"label": info.label, "value": info.name} for info in loaded.engine.layers
            if info.is_map and attr.reaches_output(info.name)]


QUERY_KEYS = FeaturesView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`FeaturesView.from_query`; what the model
    cannot show falls back to defaults, with a notice)."""
    view, choice = open_view(FeaturesView, query)
    layers, layer_value = choice.layer_choice(view.layer, "Conv2D_2")
    class_options, cam_options, image_max = [], [], 0
    if choice.loaded is not None:
        class_options, cam_options = _class_options(choice.loaded), _cam_options(choice.loaded)
        image_max = choice.loaded.engine.n_images - 1
    image_index = min(view.image, image_max)
    method_value = view.method
    target_value = view.target if view.target in [option["value"] for option in class_options] else -1
    cam_names = [option["value"] for option in cam_options]
    cam_value = view.cam if view.cam in cam_names else (cam_names[-1] if cam_names else None)
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
                            value=method_value, clearable=False), 3),
                        labelled("Class", dcc.Dropdown(id=TARGET, options=class_options, value=target_value,
                                                       clearable=False), 2),
                        labelled("Grad-CAM layer", dcc.Dropdown(id=CAM_LAYER, options=cam_options, value=cam_value,
                                                                clearable=False), 3),
                        labelled("", dbc.Checkbox(id=PAIR, label="class 4 and class 9 side by side", value=False),
                                 3),
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
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    State(CAM_LAYER, "value"),
    prevent_initial_call=True,
)
def on_features_model_change(model_name, layer_name, cam_layer):
    """A new model: its layers, classes and Grad-CAM layers, keeping the current choices where they exist."""
    try:
        loaded, layers, layer = model_layers(model_name, layer_name)
    except ExplorerError:
        return [], None, [], -1, [], None, 0
    cams = _cam_options(loaded)
    names = [option["value"] for option in cams]
    cam = cam_layer if cam_layer in names else (names[-1] if names else None)
    return layers, layer, _class_options(loaded), -1, cams, cam, loaded.engine.n_images - 1


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
    job = services.feature_jobs().get(loaded.name, loaded.version, info.name)
    if job.status == "failed":
        raise InvalidInput(f"The visualisation of {info.name} failed: {job.error}. It is tried again in a minute.")
    if job.status != "done":
        done = f"{job.done} of {job.total} units" if job.total else "starting"
        bar = html.Div([
            html.Div(f"Computing the optimal inputs of {info.name} in the background ({job.stage}, {done}); "
                     "this page updates itself, and every other viewer gets the result at once.",
                     className="small text-muted mb-1"),
            dbc.Progress(value=round(100 * job.fraction), striped=True, animated=True, className="mb-2"),
        ])
        return note_figure(f"Computing {info.name}…"), no_update, bar, False, []
    result = job.result
    models = services.gradient_models().for_model(loaded)
    dead = int(result.dead.sum())
    title = (f"optimal input of each {'map' if info.is_map else 'node'} of {info.name}"
             + (f" · {dead} dead (never fire on the test set), crossed out" if dead else ""))
    figure, _ = feature_grid(result.images, result.dead, info.is_map, (models.low, models.high), title)
    kernels = []
    if result.kernels is not None:
        kernels = dbc.Card(dbc.CardBody(dcc.Graph(figure=kernel_grid(result.kernels, f"kernels of {info.name}"),
                                                  style={"height": "420px"}, config=TOOLBAR)), className="mb-3")
    summary = html.Div(f"{info.n_units - dead} of {info.n_units} units optimised; click one to see it next to its "
                       "top test images.", className="small text-muted mb-1")
    return figure, kernels, summary, True, []


@callback(
    Output(UNIT, "children"),
    Input(GRID, "clickData"),
    Input(IMAGE, "value"),
    State(IDS.model, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def show_unit(click_data, image, model_name, layer_name):
    """The clicked unit: its optimal input, its activation on the chosen test image, its top test images."""
    try:
        loaded, info = open_layer(model_name, layer_name)
        height, width = loaded.images.shape[1:3]
        unit = unit_from_click(click_data, layout_for((height, width, info.n_units),
                                                      default_per_row(info.n_units, info.is_map)))
        if unit is None:
            return []
        if not 0 <= unit < info.n_units:
            raise InvalidInput(f"unit {unit} is out of range: {info.name} has units 0-{info.n_units - 1}")
        index = loaded.engine.check_image(inputs.integer(image, "the test image"))
        stored = services.feature_jobs().cached(loaded.name, loaded.version, info.name)
        if stored is not None:
            feature = unit_of(stored, unit)
        else:
            maximum = float(services.statistics().top_units(loaded, info.name, "max").values[0, unit])
            feature = unit_feature(services.gradient_models().for_model(loaded), info.name, unit, maximum)
        activation = loaded.engine.activations(info.name, index)[..., unit]
    except ExplorerError as exc:
        return error_alert(str(exc))
    word = "map" if info.is_map else "node"
    if feature.dead:
        optimal = note_figure(f"{word} {unit} is dead: its output is 0 on every test image, so no input raises it.")
    else:
        optimal = input_image_figure(feature.image, f"optimal input of {word} {unit} · objective "
                                                    f"{feature.objective:.3g} (grey: {feature.start_objective:.3g})")
    if info.is_map:
        grid, grid_layout = tile(activation[..., None])
        response = activation_heatmap(grid, grid_layout, "viridis", title=f"{word} {unit} on test image {index}")
    else:
        response = note_figure(f"node {unit} on test image {index}: {float(activation):.4g}")
    figures = dbc.Row([
        dbc.Col(dcc.Graph(figure=optimal, style={"height": "300px"}, config=TOOLBAR), md=4),
        dbc.Col(dcc.Graph(figure=response, style={"height": "300px"}, config=TOOLBAR), md=4),
    ], className="g-2")
    api = f"/api/models/{loaded.name}/features" + query_string({"layer": info.name, "unit": unit})
    return dbc.Card(dbc.CardBody([
        html.Div([html.H6(f"{word.capitalize()} {unit} of {info.name}", className="d-inline me-2"),
                  html.A("JSON", href=api, target="_blank", className="small")]),
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
)
@reports_errors(2, blank=([],))
def render_attribution(model_name, image, method, target, cam_layer, pair):
    """The attribution map of the test image for the chosen class (default: the predicted one), or for class 4
    and class 9 side by side."""
    loaded = services.store().get(inputs.name(model_name, "model"))
    shown = of_subject(loaded, loaded.engine.check_image(inputs.integer(image, "the test image")))
    method = attr.check_method(method)
    n_classes = len(loaded.class_names)
    cam = loaded.engine.layer(inputs.name(cam_layer, "Grad-CAM layer")).name if method == "gradcam" else None
    if inputs.flag(pair):
        if n_classes <= max(PAIR_CLASSES):
            raise InvalidInput(f"this model has no class {max(PAIR_CLASSES)}: choose one class instead")
        classes = list(PAIR_CLASSES)
    else:
        classes = [inputs.integer(target, "the class")]
    columns = []
    for class_index in classes:
        explained = explain(loaded, services.gradient_models(), shown, method, class_index, cam)
        result = explained.result
        title = (f"{METHOD_LABELS[method]} · class {loaded.class_names[explained.target]} · logit "
                 f"{result.logit:.3g}")
        if method == "integrated_gradients":
            title += (f"<br>sum {result.extras['attribution_sum']:.3g} vs logit − black's "
                      f"{result.extras['logit_difference']:.3g}")
        figure = attribution_figure(shown.pixels, result.map, method == "integrated_gradients", title)
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
)
def sync_features_query(model_name, layer_name, image, method, target, cam_layer):
    """The query string that reopens this view (a value the page does not offer falls back to its default)."""
    return FeaturesView(
        model=inputs.name_or_none(model_name), layer=inputs.name_or_none(layer_name),
        image=inputs.integer_or_none(image, 0) or 0, method=method if method in attr.METHODS else attr.METHODS[0],
        target=inputs.integer_or_none(target, 0), cam=inputs.name_or_none(cam_layer),
    ).to_query()
