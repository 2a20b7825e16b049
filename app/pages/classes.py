"""Class statistics and the MLP view: what all images of a class share at a layer, and what separates two classes.

Top: the mean activation grid of class A and class B over the whole test set (one colour scale), their difference
A − B with the units that differ most ranked, and every class's mean side by side. Bottom, the MLP view: for one
image and a dense layer, each node's activation x weight to the logits of class A and B of the next Dense layer,
and A − B; the numbers add up to the logits (plus bias). The view lives in the URL
(``/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9&mlp=Dense_1&image=12&unit=5``); ``unit`` is the unit of the class
grids whose top images show, chosen by a click on a grid or on the ranking.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from app import services
from app.core.classes import class_difference
from app.core.contributions import contributions, logit_layers
from app.core.errors import ExplorerError, InvalidInput
from app.core.grid import tile
from app.figures.comparison import difference_heatmap, ranking_figure, symmetric_range, value_range
from app.figures.heatmaps import COLORMAPS, activation_heatmap, note_figure
from app.ui import inputs
from app.ui.components import TOOLBAR, colormap_dropdown, error_alert, figure_card, labelled, output_unit_names
from app.ui.page import (
    PageIds,
    frame,
    model_layers,
    open_layer,
    open_view,
    register_url_sync,
    reports_errors,
)
from app.ui.unit_panel import (
    UnitIds,
    chosen_unit,
    clicked_unit,
    layer_layout,
    register_unit_panel,
    unit_area,
    unit_from_click,
    unit_on_layer,
    unit_panel,
)
from app.views.classes import DEFAULT_CLASSES, ClassesView

dash.register_page(__name__, path="/classes", name="Classes", title="Classes · CNN Activation Explorer", nav_order=3)

TOP_UNITS = 20
# A class-mean grid's size on a 1400 px window (a third of the width, 420 px high), for the maps' number labels.
MEAN_PX = (420, 420)
IDS = PageIds("classes")
UNIT = UnitIds("classes")
LAYER = "classes-layer"
CLASS_A = "classes-a"
CLASS_B = "classes-b"
CMAP = "classes-cmap"
MEAN_A = "classes-mean-a"
MEAN_B = "classes-mean-b"
DIFFERENCE = "classes-difference"
RANKING = "classes-ranking"
ALL_CLASSES = "classes-all"
INFO = "classes-info"
UNIT_PANEL = UNIT.panel
MLP_LAYER = "classes-mlp-layer"
MLP_IMAGE = "classes-mlp-image"
MLP_A = "classes-mlp-a"
MLP_B = "classes-mlp-b"
MLP_DIFFERENCE = "classes-mlp-difference"
MLP_SUMMARY = "classes-mlp-summary"
MLP_MESSAGE = "classes-mlp-message"
MLP_UNIT_PANEL = "classes-mlp-unit-panel"

register_url_sync(IDS)
show_unit_panel = register_unit_panel(UNIT, IDS.model, LAYER)


def _class_options(loaded) -> list[dict]:
    return [{"label": name, "value": i} for i, name in enumerate(loaded.class_names)]


def _mlp_options(loaded) -> list[dict]:
    return [{"label": name, "value": name} for name in logit_layers(loaded)]


def _pick(value, options: list[dict], fallback_position: int):
    values = [option["value"] for option in options]
    if value in values:
        return value
    return values[min(fallback_position, len(values) - 1)] if values else None


def _graph(graph_id: str, height: str):
    return dcc.Graph(id=graph_id, style={"height": height}, config=TOOLBAR)


QUERY_KEYS = ClassesView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`ClassesView.from_query`; what the model
    cannot show falls back to defaults, with a notice)."""
    view, choice = open_view(ClassesView, query)
    layers, layer_value = choice.layer_choice(view.layer, "Conv2D_3")
    chosen = choice.unit_choice(view.unit, layer_value)
    class_options, mlp_options, image_max = [], [], 0
    if choice.loaded is not None:
        class_options, mlp_options = _class_options(choice.loaded), _mlp_options(choice.loaded)
        image_max = choice.loaded.engine.n_images - 1
    # the blog's pair, 4 against 9, when the model has those classes
    class_a = _pick(view.a, class_options, 0)
    class_b = _pick(view.b, class_options, 1)
    mlp_value = _pick(view.mlp, mlp_options, len(mlp_options) - 1)
    image_index = min(view.image, image_max)
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled("Class A", dcc.Dropdown(id=CLASS_A, options=class_options, value=class_a, clearable=False), 2),
        labelled("Class B", dcc.Dropdown(id=CLASS_B, options=class_options, value=class_b, clearable=False), 2),
        labelled("Colormap", colormap_dropdown(CMAP, view.cmap), 2),
    ]
    class_section = [
        html.Div(id=INFO, className="small text-muted mb-2"),
        dbc.Row(
            [
                dbc.Col(figure_card(MEAN_A, "420px"), md=4),
                dbc.Col(figure_card(MEAN_B, "420px"), md=4),
                dbc.Col(figure_card(DIFFERENCE, "420px"), md=4),
            ],
            className="g-2",
        ),
        unit_area(UNIT, chosen),
        figure_card(RANKING, "300px"),
        html.H6("Mean grid of every class (one colour scale)"),
        dcc.Loading(html.Div(id=ALL_CLASSES), delay_show=300),
    ]
    mlp_section = dbc.Card(
        dbc.CardBody(
            [
                html.H5("MLP view: how each node pushes the logits of class A and class B"),
                dbc.Row(
                    [
                        labelled("Layer (a vector layer feeding the output layer)",
                                    dcc.Dropdown(id=MLP_LAYER, options=mlp_options, value=mlp_value,
                                                 clearable=False), 4),
                        labelled("Test image", dbc.Input(id=MLP_IMAGE, type="number", min=0, max=image_max, step=1,
                                                            value=image_index, debounce=0.3, size="sm"), 2),
                    ],
                    className="g-2 align-items-end",
                ),
                html.Div(id=MLP_MESSAGE),
                html.Div(id=MLP_SUMMARY, className="small mb-2"),
                dbc.Row(
                    [
                        dbc.Col(dcc.Loading(_graph(MLP_A, "380px"), delay_show=300), md=4),
                        dbc.Col(dcc.Loading(_graph(MLP_B, "380px"), delay_show=300), md=4),
                        dbc.Col(dcc.Loading(_graph(MLP_DIFFERENCE, "380px"), delay_show=300), md=4),
                    ],
                    className="g-2",
                ),
                html.Div(id=MLP_UNIT_PANEL),
            ]
        ),
        className="mb-3 mt-3",
    )
    return frame(IDS, choice, controls, *class_section, mlp_section)


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(CLASS_A, "options"),
    Output(CLASS_A, "value"),
    Output(CLASS_B, "options"),
    Output(CLASS_B, "value"),
    Output(MLP_LAYER, "options"),
    Output(MLP_LAYER, "value"),
    Output(MLP_IMAGE, "max"),
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    State(CLASS_A, "value"),
    State(CLASS_B, "value"),
    State(MLP_LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, layer_name, class_a, class_b, mlp_layer):
    """A new model: its layers, classes and MLP layers, keeping the current choices where they exist."""
    try:
        loaded, layers, layer = model_layers(model_name, layer_name)
    except ExplorerError:
        return [], None, [], None, [], None, [], None, 0
    classes, mlp = _class_options(loaded), _mlp_options(loaded)
    return (
        layers, layer,
        classes, _pick(class_a, classes, 0), classes, _pick(class_b, classes, 1),
        mlp, _pick(mlp_layer, mlp, len(mlp) - 1), loaded.engine.n_images - 1,
    )


@callback(
    Output(MEAN_A, "figure"),
    Output(MEAN_B, "figure"),
    Output(DIFFERENCE, "figure"),
    Output(RANKING, "figure"),
    Output(ALL_CLASSES, "children"),
    Output(INFO, "children"),
    Output(IDS.message, "children", allow_duplicate=True),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(CLASS_A, "value"),
    Input(CLASS_B, "value"),
    Input(CMAP, "value"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(7)
def render_classes(model_name, layer_name, class_a, class_b, cmap):
    """Class means of A and B on one scale, A − B on a diverging scale, ranked units, and every class's mean."""
    if not model_name or not layer_name or class_a is None or class_b is None:
        raise InvalidInput("Choose a model, a layer and two classes.")
    loaded, info = open_layer(model_name, layer_name)
    class_a, class_b = inputs.integer(class_a, "class A"), inputs.integer(class_b, "class B")
    means = services.statistics().class_means(loaded, info.name)
    diff = class_difference(means, class_a, class_b)
    names = loaded.class_names
    present = [label for label in range(len(names)) if means.counts[label]]
    tiles = {label: tile(means.means[label]) for label in present}
    zrange = value_range([grid for grid, _ in tiles.values()])
    word = "maps" if info.is_map else "nodes"

    def mean_figure(label, title, size_px=None):
        grid, grid_layout = tiles[label]
        return activation_heatmap(grid, grid_layout, cmap, zrange=zrange, title=title,
                                  unit_names=output_unit_names(loaded, info.name), size_px=size_px)

    a_name, b_name = names[class_a], names[class_b]
    small = [
        dbc.Col(
            [html.Div(f"{names[label]} · {means.counts[label]} images", className="small text-center"),
             dcc.Graph(figure=mean_figure(label, ""), style={"height": "200px"},
                       config={"displayModeBar": False})],
            xs=6, md=3, lg=2,
        )
        for label in present
    ]
    info_text = (
        f"{info.label}: mean over all {means.counts[class_a]} test images of class {a_name} and all "
        f"{means.counts[class_b]} of class {b_name}; {info.n_units} {word}. Click a unit or a ranked bar to see "
        "its top images."
    )
    return (
        mean_figure(class_a, f"mean of class {a_name} · {info.name}", MEAN_PX),
        mean_figure(class_b, f"mean of class {b_name} · {info.name}", MEAN_PX),
        difference_heatmap(diff.difference, f"mean {a_name} − mean {b_name} (red: stronger for {a_name})")
        if class_a != class_b else note_figure(f"Class A and class B are both {a_name}: the difference of a mean "
                                               "with itself is zero everywhere. Choose two different classes."),
        ranking_figure(diff.scores, diff.signed, diff.ranking, min(TOP_UNITS, info.n_units),
                       f"{word} that differ most between {a_name} and {b_name}"),
        dbc.Row(small, className="g-1"),
        info_text,
        [],
    )


@callback(
    Output(MLP_A, "figure"),
    Output(MLP_B, "figure"),
    Output(MLP_DIFFERENCE, "figure"),
    Output(MLP_SUMMARY, "children"),
    Output(MLP_MESSAGE, "children"),
    Input(IDS.model, "value"),
    Input(MLP_LAYER, "value"),
    Input(MLP_IMAGE, "value"),
    Input(CLASS_A, "value"),
    Input(CLASS_B, "value"),
)
@reports_errors(5, blank=(no_update, no_update, no_update, []))
def render_mlp(model_name, layer_name, image, class_a, class_b):
    """Contribution grids for class A, class B (one diverging scale) and A − B, with the sums that make the logits."""
    if not model_name or not layer_name or class_a is None or class_b is None:
        return {}, {}, {}, [], error_alert("This model has no vector layer feeding its output layer.")
    loaded, info = open_layer(model_name, layer_name)
    index = loaded.engine.check_image(inputs.integer(image, "the test image"))
    classes = (inputs.integer(class_a, "class A"), inputs.integer(class_b, "class B"))
    result = contributions(loaded, info.name, index, classes)
    names = loaded.class_names
    target_is_output = result.target == loaded.model.layers[-1].name
    label_of = (lambda c: f"class {names[c]}") if target_is_output else (lambda c: f"unit {c} of {result.target}")
    grids = [tile(part) for part in result.contributions]
    zrange = symmetric_range([grid for grid, _ in grids])
    figures = [
        activation_heatmap(grid, grid_layout, "rdbu", reverse=True, zrange=zrange, zmid=0.0,
                           title=f"contributions to {label_of(c)}")
        for (grid, grid_layout), c in zip(grids, result.classes, strict=True)
    ]
    a, b = result.classes
    difference = difference_heatmap(result.difference, f"{label_of(a)} − {label_of(b)}")
    probabilities = loaded.engine.probabilities(index)
    rows = [
        html.Tr([html.Td(label_of(c)), html.Td(f"{part.sum():.4f}"), html.Td(f"{bias:+.4f}"),
                 html.Td(html.B(f"{logit:.4f}")), html.Td(f"{probabilities[c]:.2%}" if target_is_output else "")])
        for c, part, bias, logit in zip(result.classes, result.contributions, result.bias, result.logits, strict=True)
    ]
    summary = [
        html.Div(f"Image {index} (true class {names[int(loaded.labels[index])]}): {result.layer} → {result.target}. "
                 "Σ contributions + bias = logit."),
        dbc.Table(
            [html.Thead(html.Tr([html.Th(""), html.Th("Σ activation × weight"), html.Th("bias"), html.Th("logit"),
                                 html.Th("probability")])), html.Tbody(rows)],
            size="sm", bordered=False, className="w-auto mb-0",
        ),
    ]
    return figures[0], figures[1], difference, summary, []


@callback(
    Output(IDS.query, "data"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(CLASS_A, "value"),
    Input(CLASS_B, "value"),
    Input(CMAP, "value"),
    Input(MLP_LAYER, "value"),
    Input(MLP_IMAGE, "value"),
    Input(UNIT.unit, "data"),
)
def sync_query(model_name, layer_name, class_a, class_b, cmap, mlp_layer, image, unit):
    """The query string that reopens this view (a value that is not one the page offers falls back to its
    default)."""
    a, b, shown_image = (inputs.integer_or_none(value, 0) for value in (class_a, class_b, image))
    return ClassesView(
        model=inputs.name_or_none(model_name), layer=inputs.name_or_none(layer_name),
        a=DEFAULT_CLASSES[0] if a is None else a, b=DEFAULT_CLASSES[1] if b is None else b,
        cmap=cmap if cmap in COLORMAPS else COLORMAPS[0], mlp=inputs.name_or_none(mlp_layer),
        image=shown_image or 0, unit=chosen_unit(unit),
    ).to_query()


@callback(
    Output(UNIT.unit, "data"),
    Input(MEAN_A, "clickData"),
    Input(MEAN_B, "clickData"),
    Input(DIFFERENCE, "clickData"),
    Input(RANKING, "clickData"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    State(UNIT.unit, "data"),
    prevent_initial_call=True,
)
def on_class_unit_choice(_a, _b, _difference, _ranking, model_name, layer_name, current):
    """A click on a unit of a class grid or on a bar of the ranking chooses that unit; a new model or layer keeps
    it where the layer has it."""
    if ctx.triggered_id in (IDS.model, LAYER):
        return unit_on_layer(current, model_name, layer_name)
    if not ctx.triggered:
        return no_update
    return clicked_unit(ctx.triggered[0]["value"], layer_layout(model_name, layer_name))


@callback(
    Output(MLP_UNIT_PANEL, "children"),
    Input(MLP_A, "clickData"),
    Input(MLP_B, "clickData"),
    Input(MLP_DIFFERENCE, "clickData"),
    Input(IDS.model, "value"),
    Input(MLP_LAYER, "value"),
    prevent_initial_call=True,
)
def on_mlp_unit_click(_a, _b, _difference, model_name, layer_name):
    """A click on a node of a contribution grid: the test images that activate that node most."""
    if not ctx.triggered or ctx.triggered_id in (IDS.model, MLP_LAYER):
        return []
    return unit_panel("classes-mlp", model_name, layer_name,
                      unit_from_click(ctx.triggered[0]["value"], layer_layout(model_name, layer_name)))
