"""Compare page: up to 8 images side by side at one layer, on ONE shared colour scale, plus B − A.

The view lives in the URL (``/compare?model=mnist-cnn&layer=Conv2D_3&images=12,7,300&cmap=jet&a=12&b=7&unit=5``). Every
image shows its input, its grid, the predicted class and confidence; the grids share zmin/zmax computed over all of
them, so a colour means the same value everywhere. Clicking a map or node lists its top test images.

Besides test-image numbers the list takes the user's own images as ``u:<id>`` (``images=3,u:…,17``), drawn on the
page's drawing pad (:mod:`app.ui.drawing_pad`; one column follows the drawing), uploaded, or made on Explore.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from app.context import app_context
from app.core.errors import ExplorerError, InvalidInput
from app.core.finder import parse_image_refs
from app.core.grid import COLORMAPS
from app.core.user_images import is_user_image
from app.figures.charts import input_image_figure, note_figure
from app.figures.comparison import UNIT_ACROSS_HEIGHT_PX, difference_heatmap, unit_across_images, value_range
from app.figures.features import METHOD_LABELS, attribution_figure
from app.figures.grids import activation_heatmap
from app.ui import inputs
from app.ui.components import (
    PREDICTED_CLASS,
    TOOLBAR,
    attribution_method_options,
    class_options,
    colormap_dropdown,
    error_alert,
    kept_choice,
    labelled,
    output_unit_names,
    verdict,
)
from app.ui.drawing_pad import drawing_pad, drawing_pad_ids, pad_image, upload_image
from app.ui.links import grid_values_link, why_link
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
    register_unit_in_url,
    register_unit_outline,
    register_unit_panel,
    unit_area,
    unit_on_layer,
)
from app.views.attribution import explain
from app.views.compare import MAX_IMAGES_TEXT, CompareView
from app.views.images import ImageRef, image_ref
from app.views.query import MAX_COMPARE_IMAGES

dash.register_page(__name__, path="/compare", name="Compare", title="Compare · CNN Activation Explorer", nav_order=1)

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
UNIT_ACROSS = "compare-unit-across"  # the chosen map or node, large, for every image
UNIT_ACROSS_GRAPH = "compare-unit-across-graph"
UNIT_DIFFERENCE_GRAPH = "compare-unit-difference-graph"
PAD = drawing_pad_ids("compare")
# The u:<id> of the column that follows the drawing pad (replaced at every stroke), or None.
DRAWING = "compare-drawing"
UNIT_PANEL = UNIT.panel
GRID_HEIGHT_PX = 380
# The input pictures' height in the cards: a 224 px picture is sent at this size.
INPUT_PX = 140
# The cells the cards' grids share as colour codes (each map averaged down past its share): five cards stay within
# a 150 kB answer with their pictures (measured: 5 of MobileNetV2's Conv1 124 kB, of the bundled Conv2D_1 134 kB;
# two of Conv2D_1 are sent whole).
CARDS_MAX_CELLS = 48_000
# A card's grid width on a 1400 px window, by the card's column width (of 12), for the maps' number labels.
GRID_WIDTH_PX = {3: 300, 4: 410, 6: 620}

register_url_sync(IDS)
show_unit_panel = register_unit_panel(UNIT, IDS.model, LAYER)
sync_query = register_unit_in_url(UNIT, VIEW, IDS.query, CompareView, method=ATTRIBUTION_METHOD,
                                  target=ATTRIBUTION_CLASS)
register_unit_outline(UNIT, {"type": GRID, "index": ALL})


QUERY_KEYS = CompareView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`CompareView.from_query`; what the model
    cannot show falls back to defaults, with a notice)."""
    view, choice = open_view(CompareView, query)
    layers, layer_value = choice.layer_choice(view.layer, "Conv2D_3")
    chosen = choice.unit_choice(view.unit, layer_value)
    classes = class_options(choice.class_names, predicted=True)
    target = kept_choice(PREDICTED_CLASS if view.target is None else view.target, classes, 0)
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled(
            f"Images (up to {MAX_COMPARE_IMAGES}: test-image numbers, e.g. 12, 7, 300, or u:… of your own)",
            dbc.Input(id=IMAGES, type="text", value=view.images, debounce=0.5, size="sm"),
            4,
        ),
        labelled("Colormap", colormap_dropdown(CMAP, view.cmap), 2),
        labelled("Where the model looks", dcc.Dropdown(id=ATTRIBUTION_METHOD, clearable=False, value=view.method,
                                                       options=attribution_method_options()), 2),
        labelled("for", dcc.Dropdown(id=ATTRIBUTION_CLASS, clearable=False, value=target, options=classes), 2),
    ]
    difference = dbc.Card(
        dbc.CardBody(
            [
                dbc.Row(
                    [
                        dbc.Col(html.H6("Difference B − A (red: stronger in B, blue: stronger in A)"), width="auto"),
                        labelled("A", dcc.Dropdown(id=DIFF_A, value=view.a, clearable=False), 2),
                        labelled("B", dcc.Dropdown(id=DIFF_B, value=view.b, clearable=False), 2),
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
    own = html.Details(
        [
            html.Summary("Add your own digit", className="h6"),
            html.P("Draw with the mouse, a pen or a finger: one column follows the drawing. Each uploaded picture "
                   "adds a column.", className="small text-muted mb-2"),
            drawing_pad("compare"),
        ],
        className="card card-body mb-3",
    )
    return frame(IDS, choice, controls, own, html.Div(id=CARDS), html.Div(id=UNIT_ACROSS), unit_area(UNIT, chosen),
                 difference,
                 dcc.Store(id=VIEW), dcc.Store(id=DRAWING, data=None))


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


def _image_refs(images_text, n_images: int) -> tuple[list[int | str], list[str]]:
    """The test-image numbers and user images' ids typed in the images field (see
    :func:`app.core.finder.parse_image_refs`), the text checked first: what arrives may be any JSON, or text long
    enough to produce a problem per word."""
    text = inputs.text("" if images_text is None else images_text, "the image list", MAX_IMAGES_TEXT)
    return parse_image_refs(text, n_images, MAX_COMPARE_IMAGES)


def _shown_images(loaded, images_text) -> tuple[list[int | str], list[ImageRef], list[str]]:
    """The images of the list the engine can show: their references (as the URL writes them), the images, and a
    sentence per one left out (a malformed entry, or a user image this instance does not have: the others still
    show)."""
    references, problems = _image_refs(images_text, loaded.engine.n_images)
    kept, shown = [], []
    for reference in references:
        try:
            shown.append(image_ref(loaded, reference, app_context().user_images))
        except ExplorerError as exc:
            problems.append(f"image {reference} is not available ({exc})")
            continue
        kept.append(reference)
    return kept, shown, problems


def _image_card(position, image: ImageRef, loaded, grid_figure, column_width):
    """One image's column: input, predicted class and confidence (and the true class of a test image), its grid
    (clickable)."""
    probabilities = loaded.engine.probabilities(image.subject)
    heading = html.B(image.name if image.own else f"#{image.key}")
    body = [
        dcc.Graph(id={"type": INPUT, "index": position}, figure=input_image_figure(image.pixels, drawn_px=INPUT_PX),
                  style={"height": "140px"}, config={"displayModeBar": False, "staticPlot": True}),
        # Two lines' height whatever the text needs, so the grids of a row start level.
        html.Div([heading, html.Span(" · "), *verdict(loaded.class_names, image.label, probabilities),
                  html.Span(" · "), html.A("why?", href=why_link(loaded.name, image.key),
                                           title="Why this prediction? How each node pushes the logits")],
                 className="small text-break", style={"minHeight": "3em"}),
        dcc.Graph(id={"type": GRID, "index": position}, figure=grid_figure, style={"height": f"{GRID_HEIGHT_PX}px"},
                  config=TOOLBAR),
    ]
    # Below 992 px two to a row whatever their number: four or five in 800 px left each grid ~100 px wide.
    return dbc.Col(dbc.Card(dbc.CardBody(body, className="p-2"), className="mb-3"), sm=6, lg=column_width)


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
    State(UNIT.unit, "data"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(6, blank=([], [], None, [], None))
def render_images(model_name, layer_name, images_text, cmap, current_a, current_b, unit=None):
    """Every image's input and grid on one colour scale (zmin/zmax over all grids), and the A/B choices."""
    if not model_name or not layer_name:
        return (no_update,) * 5 + (error_alert("Choose a model and a layer."),)
    loaded, info = open_layer(model_name, layer_name)
    engine = loaded.engine
    cmap = inputs.choice(cmap, "the colormap", COLORMAPS)
    indices, images, problems = _shown_images(loaded, images_text)
    if not indices:
        raise InvalidInput("type at least one test-image number, e.g. 12, 7, 300"
                           + (f" ({'; '.join(problems[:MAX_PROBLEMS_SHOWN])})" if problems else ""))
    tiles = [engine.tiled(info.name, image.subject) for image in images]
    zrange = value_range([grid for grid, _ in tiles])
    column_width = 6 if len(indices) <= 2 else 4 if len(indices) == 3 else 3  # three images: a row of three
    cards = [
        _image_card(
            position, image, loaded,
            activation_heatmap(grid, grid_layout, cmap, zrange=zrange, title=f"{image.name} · {info.name}",
                               unit_names=output_unit_names(loaded, info.name),
                               size_px=(GRID_WIDTH_PX[column_width], GRID_HEIGHT_PX),
                               values_url=grid_values_link(loaded.name, loaded.version, info.name,
                                                           image.key, False), chosen_unit=chosen_unit(unit),
                               max_cells=CARDS_MAX_CELLS // len(images)),
            column_width,
        )
        for position, ((grid, grid_layout), image) in enumerate(zip(tiles, images, strict=True))
    ]
    options = [{"label": f"#{index}" if isinstance(index, int) else index, "value": index} for index in indices]
    a = current_a if _listed(current_a, indices) else indices[0]
    b = current_b if _listed(current_b, indices) and current_b != a else next((i for i in indices if i != a), a)
    shown = problems[:MAX_PROBLEMS_SHOWN] + ([f"{len(problems) - MAX_PROBLEMS_SHOWN} more"]
                                             if len(problems) > MAX_PROBLEMS_SHOWN else [])
    message = [error_alert("; ".join(shown))] if problems else []
    return dbc.Row(cards, className="g-2"), options, a, options, b, message


def _listed(choice, references: list[int | str]) -> bool:
    """True if ``choice`` (a dropdown's value: any JSON) is one of the shown images (True is not image 1)."""
    return isinstance(choice, int | str) and not isinstance(choice, bool) and choice in references


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
    image_a = image_ref(loaded, a, app_context().user_images, "image A")
    image_b = image_ref(loaded, b, app_context().user_images, "image B")
    key_a, key_b = image_a.key, image_b.key
    indices, _, _ = _shown_images(loaded, images_text)
    query = CompareView(loaded.name, info.name, ",".join(map(str, indices)),
                        cmap if cmap in COLORMAPS else COLORMAPS[0], key_a, key_b).to_query()
    if key_a == key_b:
        same = f"#{key_a}" if isinstance(key_a, int) else key_a
        reason = (f"A and B are the same image ({same}): its difference with itself is zero everywhere. "
                  + ("Choose two different images." if len(set(indices)) > 1 else "Add a second image to compare."))
        return note_figure(reason), query, []
    difference = engine.activations(info.name, image_b.subject) - engine.activations(info.name, image_a.subject)
    return difference_heatmap(difference, f"{image_b.name} − {image_a.name} · {info.name}"), query, []


@callback(
    Output(UNIT_ACROSS, "children"),
    Input(UNIT.unit, "data"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(IMAGES, "value"),
    Input(CMAP, "value"),
    Input(DIFF_A, "value"),
    Input(DIFF_B, "value"),
)
def show_unit_across_images(unit, model_name, layer_name, images_text, cmap, a, b):
    """The chosen map (or node) large for every compared image, on one colour scale, and its difference B − A:
    the blog's comparison of one map across digits. Nothing while no unit is chosen."""
    unit = chosen_unit(unit)
    if unit is None:
        return []
    try:
        loaded, info = open_layer(model_name, layer_name)
        if not 0 <= unit < info.n_units:
            return []
        cmap = inputs.choice(cmap, "the colormap", COLORMAPS)
        references, images, _ = _shown_images(loaded, images_text)
        if not images:
            return []
        values = [loaded.engine.activations(info.name, image.subject)[..., unit] for image in images]
    except ExplorerError as exc:
        return error_alert(exc)
    word = "map" if info.is_map else "node"
    names = [image.name if image.own else f"#{image.key}" for image in images]
    across = unit_across_images(values, names, cmap, f"{word} {unit} of {info.name} in every image · one colour scale",
                                "activation")
    graphs = [dbc.Col(dcc.Graph(id=UNIT_ACROSS_GRAPH, figure=across, config=TOOLBAR,
                                style={"height": f"{UNIT_ACROSS_HEIGHT_PX}px"}), lg=9 if info.is_map else 12)]
    pair = [references.index(choice) for choice in (a, b) if _listed(choice, references)]
    if info.is_map and len(pair) == 2 and pair[0] != pair[1]:
        first, second = pair
        title = f"{names[second]} − {names[first]} · {word} {unit}"
        graphs.append(dbc.Col(dcc.Graph(id=UNIT_DIFFERENCE_GRAPH, config=TOOLBAR,
                                        figure=difference_heatmap((values[second] - values[first])[..., None], title),
                                        style={"height": f"{UNIT_ACROSS_HEIGHT_PX}px"}), lg=3))
    hint = html.Div(f"Click a {word} on any grid to choose another.", className="small text-muted")
    return dbc.Card(dbc.CardBody([dbc.Row(graphs, className="g-2"), hint]), className="mb-3")


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
    Output({"type": INPUT, "index": ALL}, "figure"),
    Input(ATTRIBUTION_METHOD, "value"),
    Input(ATTRIBUTION_CLASS, "value"),
    Input({"type": INPUT, "index": ALL}, "id"),
    State(IDS.model, "value"),
    State(IMAGES, "value"),
)
def overlay_inputs(method, target, shown_inputs, model_name, images_text):
    """Each card's input with where the model looks for the chosen class (default: each image's predicted class),
    or the plain input when the method is off; redrawn when the cards are (so a link's method shows at once)."""
    count = len(shown_inputs) if isinstance(shown_inputs, list) else 0
    try:
        loaded = app_context().store.get(inputs.name(model_name, "model"))
        _, images, _ = _shown_images(loaded, images_text)
        if len(images) != count:  # the cards are being redrawn for another list: the new cards will ask again
            return [no_update] * count
        if not method:
            return [input_image_figure(image.pixels) for image in images]
        target = inputs.integer(target, "the class")
        figures = []
        for image in images:
            explained = explain(loaded, app_context().gradient_models, image, method, target)
            figures.append(attribution_figure(
                image.pixels, explained.result.map, explained.method == "integrated_gradients",
                f"{METHOD_LABELS[explained.method]} · class {loaded.class_names[explained.target]}"))
        return figures
    except ExplorerError:
        return [no_update] * count


def _images_with(loaded, images_text, added: list[str], replaced: str | None = None) -> tuple[str, list[str]]:
    """The images field with ``added`` (user images' ids) in it: the first takes the place of ``replaced`` (the
    drawing's previous column) when it is listed, the others are appended while there is room.

    Returns:
        ``(the field's new text, the ids left out because the list was full)``; entries of the field that name no
        image (already reported under the cards) are dropped.
    """
    references, _ = _image_refs(images_text, loaded.engine.n_images)
    left_out = []
    for reference in added:
        if reference in references:
            continue
        if replaced is not None and replaced in references:
            references[references.index(replaced)] = reference
            replaced = None
        elif len(references) >= MAX_COMPARE_IMAGES:
            left_out.append(reference)
        else:
            references.append(reference)
    return ",".join(map(str, references)), left_out


def _full(left_out: list[str]) -> str:
    return (f"Compare shows at most {MAX_COMPARE_IMAGES} images: remove one from the list to add "
            + ("your drawing." if len(left_out) == 1 else f"{len(left_out)} more pictures."))


@callback(
    Output(IMAGES, "value"),
    Output(DRAWING, "data"),
    Output(PAD.preview, "src"),
    Output(PAD.message, "children"),
    Input(PAD.strokes, "data"),
    Input(PAD.centre, "value"),
    State(IDS.model, "value"),
    State(IMAGES, "value"),
    State(DRAWING, "data"),
    prevent_initial_call=True,
)
def on_drawing(strokes, centre, model_name, images_text, drawing):
    """A stroke ended (or Undo, or the centring switch): the drawing, preprocessed as the model's training data
    was, takes its column's place (a new column the first time). Clearing the pad removes the column."""
    drawing = drawing if isinstance(drawing, str) and is_user_image(drawing) else None
    try:
        loaded = app_context().store.get(inputs.name(model_name, "model"))
        own = pad_image(loaded, strokes, centre)
        if own is None:
            if drawing is None:
                return no_update, no_update, no_update, no_update
            references, _ = _image_refs(images_text, loaded.engine.n_images)
            return ",".join(str(r) for r in references if r != drawing), None, "", ""
        text, left_out = _images_with(loaded, images_text, [own.id], drawing)
    except ExplorerError as exc:
        return no_update, no_update, no_update, error_alert(exc)
    preview = f"/api/inputs/{own.id}/preview.png"
    if left_out:
        return no_update, no_update, preview, error_alert(_full(left_out))
    return text, own.id, preview, ""


@callback(
    Output(IMAGES, "value", allow_duplicate=True),
    Output(PAD.preview, "src", allow_duplicate=True),
    Output(PAD.message, "children", allow_duplicate=True),
    Input(PAD.upload, "contents"),
    State(PAD.centre, "value"),
    State(IDS.model, "value"),
    State(IMAGES, "value"),
    prevent_initial_call=True,
)
def on_upload(uploads, centre, model_name, images_text):
    """Uploaded pictures, preprocessed as the model's training data was, each added as a column."""
    if not uploads:
        return no_update, no_update, no_update
    try:
        loaded = app_context().store.get(inputs.name(model_name, "model"))
        contents = uploads if isinstance(uploads, list) else [uploads]
        if len(contents) > MAX_COMPARE_IMAGES:
            raise InvalidInput(f"upload at most {MAX_COMPARE_IMAGES} pictures at once")
        stored = [upload_image(loaded, inputs.text(item, "the upload", 2_000_000), centre) for item in contents]
        text, left_out = _images_with(loaded, images_text, [image.id for image in stored])
    except ExplorerError as exc:
        return no_update, no_update, error_alert(exc)
    note = error_alert(_full(left_out)) if left_out else ""
    return text, f"/api/inputs/{stored[-1].id}/preview.png", note
