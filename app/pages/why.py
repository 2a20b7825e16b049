""""Why this prediction?" (the MLP view): one image, its prediction, and how each node of the last dense layers
pushes the logits of two classes (activation × weight), which add up, with the bias, to the logits behind the
probabilities.

The view lives in the URL (``/why?model=mnist-cnn&layer=Dense_1&image=12&a=4&b=9``), so a link reopens it; without
``a`` and ``b`` it explains the predicted class against the runner-up, image after image. The image is a test image
or the user's own (``image=u:<id>``). Explore, Compare and Classes link here for the image they show.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, ctx, dcc, html

from app.context import app_context
from app.core.contributions import logit_layers
from app.core.errors import ExplorerError
from app.figures.charts import input_image_figure, probability_bars
from app.figures.contributions import contribution_figures
from app.ui import inputs
from app.ui.components import (
    PREDICTED_CLASS,
    class_options,
    error_alert,
    figure_card,
    kept_choice,
    verdict,
)
from app.ui.links import explorer_link
from app.ui.page import (
    PageIds,
    frame,
    open_named,
    open_view,
    register_image_stepping,
    register_leaving_own_image,
    register_url_sync,
    reports_errors,
)
from app.ui.unit_panel import layer_layout, unit_from_click, unit_panel
from app.views.images import MAX_REFERENCE_CHARS
from app.views.why import WhyResult, WhyView, why

# After Classes: the story's last step, comparing classes, then explaining one image.
dash.register_page(__name__, path="/why", name="Why?", title="Why this prediction? · CNN Activation Explorer",
                   nav_order=3.5)

IDS = PageIds("why")
LAYER = "why-layer"
IMAGE = "why-image"
PREVIOUS = "why-previous"
NEXT = "why-next"
RANDOM = "why-random"
CLASS_A = "why-a"
CLASS_B = "why-b"
HEADING = "why-heading"
INPUT_IMAGE = "why-input"
PROBABILITIES = "why-probabilities"
SUMMARY = "why-summary"
CHART_A = "why-chart-a"
CHART_B = "why-chart-b"
DIFFERENCE = "why-difference"
UNIT_PANEL = "why-unit-panel"
# While the user's own image is shown: {"id": "u:<id>", "over": the test image number the box held then}; else None.
OWN_IMAGE = "why-own-image"
# The classes when none is chosen: the predicted class (A) against the runner-up (B), image after image.
RUNNER_UP = PREDICTED_CLASS
CHART_HEIGHT = "360px"

register_url_sync(IDS)

QUERY_KEYS = WhyView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def _layer_options(loaded) -> list[dict]:
    return [{"label": name, "value": name} for name in logit_layers(loaded)]


def _class_choices(class_names: list[str]) -> tuple[list[dict], list[dict]]:
    """Class A's options (the predicted class first) and class B's (the runner-up first)."""
    classes = class_options(class_names)
    return ([{"label": "predicted class", "value": PREDICTED_CLASS}, *classes],
            [{"label": "runner-up", "value": RUNNER_UP}, *classes])


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`WhyView.from_query`; what the model cannot
    show falls back to defaults, with a notice)."""
    view, choice = open_view(WhyView, query)
    layers, layer_value, image_max, own_image, image_index = [], None, 0, None, view.image
    if isinstance(view.image, str):
        own_image, image_index = choice.own_image_choice(view.image), 0
    if choice.loaded is not None:
        layers = _layer_options(choice.loaded)
        layer_value = kept_choice(view.layer, layers, len(layers) - 1)
        if view.layer and view.layer != layer_value:
            choice.messages.append(error_alert(f"Layer {inputs.shown(view.layer)} does not feed the output layer of "
                                               f"{choice.name!r}; showing {layer_value!r}."))
        if not layers:
            choice.messages.append(error_alert(f"Model {choice.name!r} has no vector layer feeding a Dense output "
                                               "layer: there are no node contributions to show."))
        image_max = choice.loaded.engine.n_images - 1
        if not 0 <= image_index <= image_max:
            choice.messages.append(error_alert(f"Image {image_index} is out of range 0-{image_max}; showing 0."))
            image_index = 0
    a_options, b_options = _class_choices(choice.class_names)
    image_controls = dbc.InputGroup(
        [
            dbc.Button("◀", id=PREVIOUS, color="secondary", outline=True, title="previous image"),
            dbc.Input(id=IMAGE, type="number", min=0, max=image_max, step=1, value=image_index, debounce=0.3),
            dbc.Button("▶", id=NEXT, color="secondary", outline=True, title="next image"),
            dbc.Button("random", id=RANDOM, color="secondary", outline=True, title="random image"),
        ],
        size="sm",
    )
    # Two rows of controls on an 800 px window (labelled() would take three), so the charts start higher.
    controls = [
        _control("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 6, 2),
        _control("Test image", image_controls, 6, 4),
        _control("Class A", dcc.Dropdown(id=CLASS_A, options=a_options, clearable=False,
                                         value=kept_choice(view.a, a_options, 0)), 3, 2),
        _control("Class B", dcc.Dropdown(id=CLASS_B, options=b_options, clearable=False,
                                         value=kept_choice(view.b, b_options, 0)), 3, 2),
    ]
    # The answer first: the image and what the model predicts, then the three charts, all above the fold of a
    # 1000 px high window; the table of sums beside the image on wide windows, after the charts on narrow ones.
    view_row = dbc.Row(
        [
            dbc.Col(figure_card(INPUT_IMAGE, "190px", toolbar=False), xs=6, lg=2),
            dbc.Col(figure_card(PROBABILITIES, "190px", toolbar=False), xs=6, lg=3),
            dbc.Col(html.Div(id=SUMMARY, className="small"), xs=12, lg=7, className="order-last order-lg-0 mb-3"),
            *(dbc.Col(figure_card(graph, CHART_HEIGHT), md=4) for graph in (CHART_A, CHART_B, DIFFERENCE)),
        ],
        className="g-2",
    )
    return frame(IDS, choice, controls, html.H5(id=HEADING, className="mb-2"), view_row,
                 html.Div(id=UNIT_PANEL), dcc.Store(id=OWN_IMAGE, data=own_image and {"id": own_image,
                                                                                     "over": image_index}),
                 model_width=2)


def _control(label: str, control, tablet: int, wide: int) -> dbc.Col:
    """A labelled control taking ``tablet`` twelfths of the row from 768 px and ``wide`` from 992 px."""
    return dbc.Col([dbc.Label(label, className="small text-muted mb-0"), control], xs=12, md=tablet, lg=wide,
                   className="mb-2")


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(IMAGE, "max"),
    Output(CLASS_A, "options"),
    Output(CLASS_A, "value"),
    Output(CLASS_B, "options"),
    Output(CLASS_B, "value"),
    Input(IDS.model, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name):
    """A new model: its layers feeding the output layer, its test-set size and classes (explaining its predicted
    class against the runner-up)."""
    a_options, b_options = _class_choices([])
    try:
        loaded = open_named(model_name)
    except ExplorerError:
        return [], None, 0, a_options, PREDICTED_CLASS, b_options, RUNNER_UP
    layers = _layer_options(loaded)
    a_options, b_options = _class_choices(loaded.class_names)
    return (layers, kept_choice(None, layers, len(layers) - 1), loaded.engine.n_images - 1,
            a_options, PREDICTED_CLASS, b_options, RUNNER_UP)


register_image_stepping(IMAGE, PREVIOUS, NEXT, RANDOM)
register_leaving_own_image(IMAGE, OWN_IMAGE)


def _chosen_class(value, field: str) -> int | None:
    """A class dropdown's value: a class, or None for "the predicted class" / "the runner-up"."""
    chosen = inputs.integer(value, field, PREDICTED_CLASS)
    return None if chosen == PREDICTED_CLASS else chosen


@callback(
    Output(HEADING, "children"),
    Output(INPUT_IMAGE, "figure"),
    Output(PROBABILITIES, "figure"),
    Output(SUMMARY, "children"),
    Output(CHART_A, "figure"),
    Output(CHART_B, "figure"),
    Output(DIFFERENCE, "figure"),
    Output(IDS.query, "data"),
    Output(IDS.message, "children"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(IMAGE, "value"),
    Input(OWN_IMAGE, "data"),
    Input(CLASS_A, "value"),
    Input(CLASS_B, "value"),
)
@reports_errors(9)
def render(model_name, layer_name, image, own_image, class_a, class_b):
    """The image, its prediction and probabilities, the contributions of the layer's nodes to the logits of class
    A and class B and their difference, and the query string that reopens the view."""
    own = own_image.get("id") if isinstance(own_image, dict) else None
    view = WhyView(model=inputs.name(model_name, "model"), layer=inputs.name_or_none(layer_name),
                   image=image if own is None else inputs.text(own, "your image", MAX_REFERENCE_CHARS),
                   a=_chosen_class(class_a, "class A"), b=_chosen_class(class_b, "class B"))
    context = app_context()
    result = why(context.store, context.user_images, view)
    loaded, shown = result.loaded, result.image
    if not shown.own:  # in the background: "previous" and "next" then find their pass cached
        loaded.engine.prefetch_neighbours(shown.subject)
    names = loaded.class_names
    title = "your image · what the model sees" if shown.own else f"input · class {names[shown.label]}"
    a_name, b_name = (_unit_name(result, unit) for unit in result.contributions.classes)
    a_figure, b_figure, difference = contribution_figures(result.contributions, (a_name, b_name))
    heading = [html.Span(f"{shown.name[0].upper()}{shown.name[1:]}: "), *verdict(names, shown.label,
                                                                                 result.probabilities),
               html.Span(" · ", className="small"),
               html.A("show in Explore", href=explorer_link(loaded.name, image=shown.key), className="small")]
    drawn = WhyView(loaded.name, result.contributions.layer, shown.key, view.a, view.b)
    return (heading, input_image_figure(shown.pixels, title),
            probability_bars(result.probabilities, names, shown.label), _summary(result, a_name, b_name),
            a_figure, b_figure, difference, drawn.to_query(), [])


def _unit_name(result: WhyResult, unit: int) -> str:
    """How the page names a unit of the layer fed: ``class 4``, or ``unit 3 of Dense_2`` for a hidden layer."""
    if result.classes_are_outputs:
        return f"class {result.loaded.class_names[unit]}"
    return f"unit {unit} of {result.contributions.target}"


def _summary(result: WhyResult, a_name: str, b_name: str) -> list:
    """How the charts add up: per class, Σ activation × weight + bias = logit, and the probability softmax makes of
    the logits."""
    parts = result.contributions
    rows = [
        html.Tr([html.Td(name), html.Td(f"{part.sum():.4f}"), html.Td(f"{bias:+.4f}"), html.Td(html.B(f"{logit:.4f}")),
                 html.Td(f"{result.probabilities[unit]:.2%}" if result.classes_are_outputs else "")])
        for name, unit, part, bias, logit in zip((a_name, b_name), parts.classes, parts.contributions, parts.bias,
                                                 parts.logits, strict=True)
    ]
    return [
        html.P(f"{parts.layer} → {parts.target}: each node's activation × its weight to a class is its push on that "
               "class's logit (red up, blue down); the pushes plus the bias make the logit, and the larger logit the "
               "larger probability. Click a node to see the test images that activate it most.", className="mb-1"),
        dbc.Table(
            [html.Thead(html.Tr([html.Th(""), html.Th("Σ activation × weight"), html.Th("bias"), html.Th("logit"),
                                 html.Th("probability")])), html.Tbody(rows)],
            size="sm", bordered=False, className="w-auto mb-0",
        ),
    ]


@callback(
    Output(UNIT_PANEL, "children"),
    Input(CHART_A, "clickData"),
    Input(CHART_B, "clickData"),
    Input(DIFFERENCE, "clickData"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    prevent_initial_call=True,
)
def on_node_click(_a, _b, _difference, model_name, layer_name):
    """A click on a node of a contribution chart: the test images that activate that node most."""
    if not ctx.triggered or ctx.triggered_id in (IDS.model, LAYER):
        return []
    return unit_panel("why", model_name, layer_name,
                      unit_from_click(ctx.triggered[0]["value"], layer_layout(model_name, layer_name)))

