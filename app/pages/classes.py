"""Class statistics: what all images of a class share at a layer, and what separates two classes.

The mean activation grid of class A and class B over the whole test set (one colour scale), their difference A − B
with the units that differ most ranked, and every class's mean side by side. The view lives in the URL
(``/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9&unit=5``); ``unit`` is the unit of the class grids whose top
images show, chosen by a click on a grid or on the ranking.

For one image, how each node of the last dense layers pushes the logits of class A and class B (the MLP view) is
the "Why this prediction?" page (:mod:`app.pages.why`); this page links to it with its two classes, for the image a
link names (``image=12``). An old link to the MLP view, when it lived here (``mlp=Dense_1&image=12``), opens this
page with a notice that links to that view.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from app.context import app_context
from app.core.classes import class_difference
from app.core.errors import ExplorerError, InvalidInput
from app.core.grid import COLORMAPS, tile
from app.figures.charts import fitted_title, note_figure
from app.figures.comparison import difference_heatmap, ranking_figure, value_range
from app.figures.grids import activation_heatmap
from app.ui import inputs
from app.ui.components import (
    class_options,
    colormap_dropdown,
    figure_card,
    info_alert,
    kept_choice,
    labelled,
    output_unit_names,
)
from app.ui.links import class_grid_values_link, why_link
from app.ui.navigation import STILL_COMPUTING_POLL
from app.ui.page import (
    PageIds,
    asks_again,
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
    unit_on_layer,
)
from app.views.classes import DEFAULT_CLASSES, ClassesView

dash.register_page(__name__, path="/classes", name="Classes", title="Classes · CNN Activation Explorer", nav_order=3)

TOP_UNITS = 20
# A class-mean grid's size on a 1400 px window (a third of the width, 420 px high), for the maps' number labels.
MEAN_PX = (420, 420)
# Every class's small mean grid: a sixth of a 1400 px window, 200 px high.
SMALL_MEAN_PX = (200, 200)
# The page's byte budget (150 kB for any layer: ~135 kB measured for MobileNetV2's Conv1 and the bundled model's
# Conv2D_1) shared by its grids as colour codes: three large ones of at most this many cells (the bundled model's
# Conv2D_1, 32 maps of 26 × 26, is sent at 22 × 22 a map) ...
CLASS_GRID_MAX_CELLS = 16_000
# ... and up to ten small ones (a thumbnail of each class's mean: 1,280 maps of 7 × 7 become one cell each, the
# bundled model's 32 maps of 26 × 26 blocks of 6 × 6).
SMALL_GRID_MAX_CELLS = 1_200
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
WHY = "classes-why"  # the link to "Why this prediction?" with the two classes
# What the link that opened the page says of "Why this prediction?": {"image": a test image or None, "mlp": the layer
# of an old link to the MLP view or None}; kept for the link and the URL.
WHY_IMAGE = "classes-why-image"

register_url_sync(IDS)
show_unit_panel = register_unit_panel(UNIT, IDS.model, LAYER)


QUERY_KEYS = ClassesView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`ClassesView.from_query`; what the model
    cannot show falls back to defaults, with a notice)."""
    view, choice = open_view(ClassesView, query)
    layers, layer_value = choice.layer_choice(view.layer, "Conv2D_3")
    chosen = choice.unit_choice(view.unit, layer_value)
    classes = class_options(choice.class_names)
    # the blog's pair, 4 against 9, when the model has those classes
    class_a = kept_choice(view.a, classes, 0)
    class_b = kept_choice(view.b, classes, 1)
    if view.mlp is not None and choice.loaded is not None:
        # An old link to the MLP view (it lived at the bottom of this page): the link that opens it, on top.
        image = view.image or 0
        choice.messages.append(info_alert([
            "The MLP view has a page of its own now: ",
            html.A(f"Open the MLP view of image {image}",
                   href=why_link(choice.name, image, view.mlp, class_a, class_b), className="alert-link"),
            f" (how each node pushes the logits of class {class_a} and class {class_b}).",
        ]))
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled("Class A", dcc.Dropdown(id=CLASS_A, options=classes, value=class_a, clearable=False), 2),
        labelled("Class B", dcc.Dropdown(id=CLASS_B, options=classes, value=class_b, clearable=False), 2),
        labelled("Colormap", colormap_dropdown(CMAP, view.cmap), 2),
    ]
    class_section = [
        html.Div(id=INFO, className="small text-muted mb-1"),
        html.Div(id=WHY, className="small mb-2"),
        dcc.Store(id=WHY_IMAGE, data={"image": view.image, "mlp": view.mlp}),
        # Below 992 px the two means side by side and their difference under them: a third of 800 px left
        # Conv2D_3's 128 maps ~110 px wide.
        dbc.Row(
            [
                dbc.Col(figure_card(MEAN_A, "420px"), sm=6, lg=4),
                dbc.Col(figure_card(MEAN_B, "420px"), sm=6, lg=4),
                dbc.Col(figure_card(DIFFERENCE, "420px"), lg=4),
            ],
            className="g-2",
        ),
        unit_area(UNIT, chosen),
        figure_card(RANKING, "300px"),
        html.H6("Mean grid of every class (one colour scale)"),
        dcc.Loading(html.Div(id=ALL_CLASSES), delay_show=300),
    ]
    return frame(IDS, choice, controls, *class_section)


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(CLASS_A, "options"),
    Output(CLASS_A, "value"),
    Output(CLASS_B, "options"),
    Output(CLASS_B, "value"),
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    State(CLASS_A, "value"),
    State(CLASS_B, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, layer_name, class_a, class_b):
    """A new model: its layers and classes, keeping the current choices where they exist."""
    try:
        loaded, layers, layer = model_layers(model_name, layer_name)
    except ExplorerError:
        return [], None, [], None, [], None
    classes = class_options(loaded.class_names)
    return layers, layer, classes, kept_choice(class_a, classes, 0), classes, kept_choice(class_b, classes, 1)


# While a background job computes the class means: each chart says what it will show, not empty axes.
WAITING = (
    note_figure("The mean of class A fills in here once the class means are computed."),
    note_figure("The mean of class B fills in here."),
    note_figure("Their difference, A − B, fills in here."),
    note_figure("The units that differ most fill in here."),
    [],
    "",
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
    Input(STILL_COMPUTING_POLL, "n_intervals"),
    State(IDS.message, "children"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(7, waiting=WAITING)
def render_classes(model_name, layer_name, class_a, class_b, cmap, _poll=None, shown_message=None):
    """Class means of A and B on one scale, A − B on a diverging scale, ranked units, and every class's mean
    (asked again while a background job computes the class means)."""
    asks_again(shown_message)
    if not model_name or not layer_name or class_a is None or class_b is None:
        raise InvalidInput("Choose a model, a layer and two classes.")
    loaded, info = open_layer(model_name, layer_name)
    class_a, class_b = inputs.integer(class_a, "class A"), inputs.integer(class_b, "class B")
    means = app_context().statistics.class_means(loaded, info.name)
    diff = class_difference(means, class_a, class_b)
    names = loaded.class_names
    present = [label for label in range(len(names)) if means.counts[label]]
    tiles = {label: tile(means.means[label]) for label in present}
    zrange = value_range([grid for grid, _ in tiles.values()])
    word = "maps" if info.is_map else "nodes"

    def mean_figure(label, title, size_px, max_cells=CLASS_GRID_MAX_CELLS):
        grid, grid_layout = tiles[label]
        return activation_heatmap(grid, grid_layout, cmap, zrange=zrange, title=title,
                                  unit_names=output_unit_names(loaded, info.name), size_px=size_px,
                                  value_name="mean activation", max_cells=max_cells,
                                  values_url=class_grid_values_link(loaded.name, loaded.version, info.name, label))

    a_name, b_name = names[class_a], names[class_b]
    small = [
        dbc.Col(
            [html.Div(f"{names[label]} · {means.counts[label]} images", className="small text-center"),
             dcc.Graph(figure=mean_figure(label, "", SMALL_MEAN_PX, SMALL_GRID_MAX_CELLS),
                       style={"height": "200px"},
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
        # a third of an 800 px window holds ~30 characters of a title: longer ones go on two lines
        mean_figure(class_a, fitted_title(f"mean of class {a_name} · {info.name}"), MEAN_PX),
        mean_figure(class_b, fitted_title(f"mean of class {b_name} · {info.name}"), MEAN_PX),
        difference_heatmap(diff.difference, fitted_title(f"mean {a_name} − mean {b_name} (red: stronger for "
                                                         f"{a_name})"),
                           values_url=class_grid_values_link(loaded.name, loaded.version, info.name,
                                                             pair=(class_a, class_b)),
                           size_px=MEAN_PX, max_cells=CLASS_GRID_MAX_CELLS)
        if class_a != class_b else note_figure(f"Class A and class B are both {a_name}: the difference of a mean "
                                               "with itself is zero everywhere. Choose two different classes."),
        ranking_figure(diff.scores, diff.signed, diff.ranking, min(TOP_UNITS, info.n_units),
                       f"{word} that differ most between {a_name} and {b_name}"),
        dbc.Row(small, className="g-1"),
        info_text,
        [],
    )


@callback(
    Output(WHY, "children"),
    Input(IDS.model, "value"),
    Input(CLASS_A, "value"),
    Input(CLASS_B, "value"),
    State(WHY_IMAGE, "data"),
)
def show_why_link(model_name, class_a, class_b, named):
    """The link to "Why this prediction?" for the image the page's link named (else image 0), with the two
    classes (and the layer of an old link to the MLP view)."""
    named = named if isinstance(named, dict) else {}
    image = inputs.integer_or_none(named.get("image"), 0) or 0
    a, b = inputs.integer_or_none(class_a, 0), inputs.integer_or_none(class_b, 0)
    if a is None or b is None:
        return []
    href = why_link(inputs.name_or_none(model_name), image, inputs.name_or_none(named.get("mlp")), a, b)
    return [html.Span("For one image, how each node of the last dense layer pushes the logits of these two "
                      "classes: "), html.A(f"Why this prediction? (image {image})", href=href)]


@callback(
    Output(IDS.query, "data"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(CLASS_A, "value"),
    Input(CLASS_B, "value"),
    Input(CMAP, "value"),
    Input(UNIT.unit, "data"),
    State(WHY_IMAGE, "data"),
)
def sync_query(model_name, layer_name, class_a, class_b, cmap, unit, named=None):
    """The query string that reopens this view (a value that is not one the page offers falls back to its
    default); the image a link named stays in it, for the link to "Why this prediction?"."""
    a, b = (inputs.integer_or_none(value, 0) for value in (class_a, class_b))
    image = inputs.integer_or_none(named.get("image"), 0) if isinstance(named, dict) else None
    return ClassesView(
        model=inputs.name_or_none(model_name), layer=inputs.name_or_none(layer_name),
        a=DEFAULT_CLASSES[0] if a is None else a, b=DEFAULT_CLASSES[1] if b is None else b,
        cmap=cmap if cmap in COLORMAPS else COLORMAPS[0], image=image, unit=chosen_unit(unit),
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
