"""Explorer page: one model, one layer, one test image; the map/node grid, the input and the class probabilities.

The view lives in the URL (``/?model=mnist-cnn&layer=Conv2D_3&image=1302&cmap=jet&reverse=1&scale=1&unit=5``),
so a link reopens it, with the chosen unit's top images. A digit the user draws or uploads (the drawing pad,
:mod:`app.ui.drawing_pad`) is shown like a test image and addressed as ``image=u:<id>``, so its link reopens it too,
for anyone on the instance. A layer with more maps than a page holds is shown a page at a time (``page=3``), in model
order or most active first (``order=active``), with previous / next page buttons. Callbacks only unpack inputs,
call the activation engine and the figure builders, and return.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from app.context import app_context
from app.core.errors import ExplorerError, InvalidInput
from app.core.grid import COLORMAPS, MAP_ORDERS, layout_for, page_count
from app.core.user_images import is_user_image
from app.figures.features import METHOD_LABELS, attribution_figure
from app.ui import inputs
from app.ui.components import (
    PREDICTED_CLASS,
    attribution_method_options,
    class_options,
    colormap_dropdown,
    error_alert,
    figure_card,
    kept_choice,
    labelled,
)
from app.ui.drawing_pad import drawing_pad, drawing_pad_ids, pad_image, upload_image
from app.ui.explorer_answer import explorer_answer
from app.ui.links import (
    compare_link,
)
from app.ui.navigation import BASKET, STILL_COMPUTING_POLL, add_to_basket
from app.ui.page import (
    PageIds,
    asks_again,
    frame,
    model_layers,
    open_layer,
    open_view,
    register_image_stepping,
    register_leaving_own_image,
    register_url_sync,
    reports_errors,
)
from app.ui.unit_panel import (
    UnitIds,
    chosen_unit,
    clicked_unit,
    register_unit_in_url,
    register_unit_outline,
    register_unit_panel,
    unit_area,
    unit_from_click,
    unit_on_layer,
)
from app.views.attribution import explain
from app.views.explore import ORDER_LABELS, ExploreView, layer_page_size
from app.views.images import MAX_REFERENCE_CHARS, image_ref

dash.register_page(__name__, path="/", name="Explore", title="Explore · CNN Activation Explorer", nav_order=0)

IDS = PageIds("explore")
UNIT = UnitIds("explore")
VIEW = "explore-view"  # the query string of the view without the chosen unit
LAYER = "explore-layer"
IMAGE = "explore-image"
PREVIOUS = "explore-previous"
NEXT = "explore-next"
RANDOM = "explore-random"
IMAGE_INFO = "explore-image-info"
IMAGE_NOTE = "explore-image-note"
CMAP = "explore-cmap"
REVERSE = "explore-reverse"
SCALE = "explore-scale"
FIXED = "explore-fixed"
HEATMAP = "explore-heatmap"
INPUT_IMAGE = "explore-input"
PROBABILITIES = "explore-probabilities"
MODEL_INFO = "explore-model-info"
UNIT_PANEL = UNIT.panel
ADD_TO_COMPARE = "explore-add-to-compare"
OPEN_IN_COMPARE = "explore-open-in-compare"
COMPARE_NOTE = "explore-compare-note"
KEYS_HELP = "explore-keys-help"
# While the user's own image is shown: {"id": "u:<id>", "over": the test image number the box held then, "source":
# "pad", "upload" or "link"}; else None.
OWN_IMAGE = "explore-own-image"
PAD = drawing_pad_ids("explore")
ATTRIBUTION_METHOD = "explore-attribution-method"
ATTRIBUTION_CLASS = "explore-attribution-class"
ATTRIBUTION = "explore-attribution"
ATTRIBUTION_CARD = "explore-attribution-card"
ATTRIBUTION_IMAGE = "explore-attribution-image"  # written when the image changes while a method is on
PAGING = "explore-paging"  # the page controls of a layer with more maps than a page holds (hidden otherwise)
ORDER = "explore-order"
PAGE = "explore-page"  # the page asked for (from 1), or None: the page holding the chosen unit, else the first
PAGE_SHOWN = "explore-page-shown"  # the page drawn: {"page", "pages", "per_row", "units"}, or None (one page)
PAGE_PREVIOUS = "explore-page-previous"
PAGE_NEXT = "explore-page-next"
PAGE_LABEL = "explore-page-label"
# A new image number for the server's render: {"image": n, "at": ms}; not written for a step the browser draws.
IMAGE_ASKED = "explore-image-asked"
# The most maps a page holds (app.core.grid.PAGE_SIZES): a page store holding more did not come from the page.
MAX_PAGE_UNITS = 512
# The grid's size on a 1400 x 900 window (72vh high, 3/4 of the width), for the maps' number labels.
HEATMAP_PX = (900, 560)
# The colour bar of a grid with the blog's scaling: each map standardised to mean 128 and 64 per standard deviation.
STANDARDISED = "standardised: 128 ± 64 per σ"

register_url_sync(IDS)
show_unit_panel = register_unit_panel(UNIT, IDS.model, LAYER)
register_unit_outline(UNIT, HEATMAP)
sync_query = register_unit_in_url(UNIT, VIEW, IDS.query, ExploreView, method=ATTRIBUTION_METHOD,
                                  target=ATTRIBUTION_CLASS)


def _model_info(loaded) -> str:
    accuracy = loaded.meta.get("metrics", {}).get("test_accuracy")
    parts = [f"{loaded.engine.n_images} test images", f"{len(loaded.class_names)} classes"]
    if accuracy is not None:
        parts.append(f"test accuracy {accuracy:.1%}")
    return " · ".join(parts)


QUERY_KEYS = ExploreView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened in the state the query string describes (:meth:`ExploreView.from_query`; what the model
    cannot show falls back to defaults, with a notice)."""
    view, choice = open_view(ExploreView, query)
    layers, layer_value = choice.layer_choice(view.layer)
    image_max, info, own_image, image_index = 0, "", None, view.image
    if isinstance(view.image, str):
        own_image, image_index = choice.own_image_choice(view.image), 0
    if choice.loaded is not None:
        image_max = choice.loaded.engine.n_images - 1
        if not 0 <= image_index <= image_max:
            choice.messages.append(error_alert(f"Image {image_index} is out of range 0-{image_max}; showing 0."))
            image_index = 0
        info = _model_info(choice.loaded)
    chosen = choice.unit_choice(view.unit, layer_value)
    paged, page = _link_page(choice, layer_value, view.page)
    image_controls = dbc.InputGroup(
        [
            dbc.Button("◀", id=PREVIOUS, color="secondary", outline=True, title="previous image"),
            dbc.Input(id=IMAGE, type="number", min=0, max=image_max, step=1, value=image_index, debounce=0.3),
            dbc.Button("▶", id=NEXT, color="secondary", outline=True, title="next image"),
            dbc.Button("random", id=RANDOM, color="secondary", outline=True, title="random image"),
            dbc.Button("?", id=KEYS_HELP, color="secondary", outline=True, title="keyboard shortcuts"),
        ],
        size="sm",
    )
    keys_help = dbc.Popover(
        dbc.PopoverBody([html.Div([html.Kbd("←"), " / ", html.Kbd("→"), " previous / next image"]),
                         html.Div([html.Kbd("r"), " random image"]),
                         html.Div("(when no text box has the focus)", className="text-muted")]),
        target=KEYS_HELP, trigger="legacy", placement="bottom",
    )
    compare_controls = html.Div(
        [
            dbc.Button("add to compare", id=ADD_TO_COMPARE, size="sm", color="secondary", outline=True,
                       className="me-1"),
            dbc.Button("open in compare", id=OPEN_IN_COMPARE, size="sm", color="primary", href="/compare"),
            html.Span(id=COMPARE_NOTE, className="small ms-2"),
        ],
        className="mb-2",
    )
    controls = [
        labelled("Layer", dcc.Dropdown(id=LAYER, options=layers, value=layer_value, clearable=False), 3),
        labelled("Test image", html.Div([image_controls, keys_help,
                                         html.Div(id=IMAGE_NOTE, className="small text-muted")]), 3),
        labelled("Colormap", colormap_dropdown(CMAP, view.cmap), 2),
        dbc.Col(
            [
                dbc.Switch(id=REVERSE, label="reverse", value=view.reverse, className="small"),
                dbc.Switch(id=SCALE, label="standardise", value=view.scale, className="small"),
                dbc.Switch(id=FIXED, value=view.fixed, className="small", label=html.Span(
                    "fixed scale", title="one colour scale for this layer on every image (1st-99th percentile of the "
                                         "test set), so stepping shows real change")),
            ],
            xs=12, sm=6, lg=2,
        ),
    ]
    # Three areas (assets/layout.css): the answer (what the model predicts) first, the grid, then the tools. Wide,
    # the answer and the tools share a left column beside the grid, so on a 1000 px high window the probabilities
    # end above the fold and the pad sits right under them; narrow, the answer's image and probabilities sit side
    # by side above a full-width grid and the tools follow it.
    figures = html.Div(
        [
            html.Div(
                [
                    html.Div(figure_card(INPUT_IMAGE, "220px", toolbar=False)),
                    html.Div([html.Div(id=IMAGE_INFO, className="small mb-2"),
                              figure_card(PROBABILITIES, "230px", toolbar=False), compare_controls]),
                ],
                className="explore-answer",
            ),
            html.Div([_paging_controls(view.order, paged), figure_card(HEATMAP, "72vh"), unit_area(UNIT, chosen),
                      dcc.Store(id=VIEW), dcc.Store(id=PAGE, data=page), dcc.Store(id=IMAGE_ASKED),
                      dcc.Store(id=PAGE_SHOWN)],
                     className="explore-grid"),
            html.Div(
                [
                    _attribution_controls(choice, view),
                    dbc.Card(dbc.CardBody([html.H6("Your own digit", className="card-title"),
                                           html.P("Draw with the mouse, a pen or a finger, or upload a picture: every "
                                                  "view then shows it.", className="small text-muted mb-2"),
                                           drawing_pad("explore")]), className="mb-3"),
                ],
                className="explore-tools",
            ),
        ],
        className="explore-figures",
    )
    return frame(IDS, choice, controls, html.Div(info, id=MODEL_INFO, className="small text-muted mb-2"), figures,
                 dcc.Store(id=OWN_IMAGE, data=own_image and {"id": own_image, "over": image_index, "source": "link"}),
                 model_width=2)


def _link_page(choice, layer_name: str | None, page: int | None) -> tuple[bool, int | None]:
    """Whether the link's layer is shown a page at a time, and the page the link asks for: past the last page, the
    last (with a notice)."""
    if choice.loaded is None or layer_name is None:
        return False, page
    info = choice.loaded.engine.layer(layer_name)
    per_page = layer_page_size(info)
    if per_page is None:
        return False, page
    pages = page_count(info.n_units, per_page)
    if page is not None and page > pages:
        choice.messages.append(error_alert(f"Page {page} is past the last page of {info.name} ({pages}); showing "
                                           f"page {pages}."))
        page = pages
    return True, page


def _paging_controls(order: str, shown: bool) -> html.Div:
    """The order of a paged layer's maps and the previous / next page buttons around "maps 65–128 of 1,280";
    hidden for a layer of one page."""
    # the flex box inside the hidden one: Bootstrap's d-flex would override the hidden attribute
    return html.Div(html.Div(
        [
            dcc.RadioItems(id=ORDER, options=[{"label": f" {ORDER_LABELS[order]}", "value": order}
                                              for order in MAP_ORDERS],
                           value=order, inline=True, inputClassName="ms-2", className="small me-3"),
            dbc.ButtonGroup([
                dbc.Button("◀", id=PAGE_PREVIOUS, color="secondary", outline=True, title="previous page of maps"),
                dbc.Button("▶", id=PAGE_NEXT, color="secondary", outline=True, title="next page of maps"),
            ], size="sm", className="me-2"),
            html.Span(id=PAGE_LABEL, className="small"),
        ],
        className="d-flex flex-wrap align-items-center mb-1",
    ), id=PAGING, hidden=not shown)


def _attribution_controls(choice, view: ExploreView) -> html.Div:
    """"Where the model looks": a method (off by default) and the class to explain (default: the predicted one),
    as the link chose them; the overlay appears under them."""
    methods = attribution_method_options()
    classes = class_options(choice.class_names, predicted=True)
    target = kept_choice(PREDICTED_CLASS if view.target is None else view.target, classes, 0)
    return html.Div(
        [
            html.Div(
                [
                    # the whole width of the narrow column at every window size (labelled() halves it below 992 px)
                    labelled("Where the model looks",
                             dcc.Dropdown(id=ATTRIBUTION_METHOD, options=methods, value=view.method, clearable=False)),
                    labelled("for", dcc.Dropdown(id=ATTRIBUTION_CLASS, options=classes, value=target,
                                                 clearable=False)),
                ],
                className="g-1",
            ),
            html.Div(figure_card(ATTRIBUTION, "260px", toolbar=False), id=ATTRIBUTION_CARD, hidden=True),
            dcc.Store(id=ATTRIBUTION_IMAGE),
        ]
    )


@callback(
    Output(LAYER, "options"),
    Output(LAYER, "value"),
    Output(IMAGE, "max"),
    Output(MODEL_INFO, "children"),
    Output(ATTRIBUTION_CLASS, "options"),
    Output(ATTRIBUTION_CLASS, "value"),
    Input(IDS.model, "value"),
    State(LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, current_layer):
    """A new model: its layers (keeping the current one if it has it), its test-set size, summary and classes."""
    try:
        loaded, options, layer = model_layers(model_name, current_layer)
    except ExplorerError as exc:
        return [], None, 0, str(exc), class_options([], predicted=True), -1
    return (options, layer, loaded.engine.n_images - 1, _model_info(loaded),
            class_options(loaded.class_names, predicted=True), -1)




register_image_stepping(IMAGE, PREVIOUS, NEXT, RANDOM, view=VIEW, own_image=OWN_IMAGE)

# The image box's number asks the server for a view unless the browser draws it itself (a step, see
# assets/image_stepping.js); a step the browser could not draw asks through here too.
clientside_callback(
    ClientsideFunction(namespace="explorer", function_name="askImage"),
    Output(IMAGE_ASKED, "data"),
    Input(IMAGE, "value"),
    prevent_initial_call=True,
)


@callback(
    Output(HEATMAP, "figure"),
    Output(INPUT_IMAGE, "figure"),
    Output(PROBABILITIES, "figure"),
    Output(IMAGE_INFO, "children"),
    Output(VIEW, "data"),
    Output(IDS.message, "children", allow_duplicate=True),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    State(IMAGE, "value"),
    Input(CMAP, "value"),
    Input(REVERSE, "value"),
    Input(SCALE, "value"),
    Input(FIXED, "value"),
    Input(OWN_IMAGE, "data"),
    State(UNIT.unit, "data"),
    Input(STILL_COMPUTING_POLL, "n_intervals"),
    State(IDS.message, "children"),
    Input(ORDER, "value"),
    Input(PAGE, "data"),
    Input(IMAGE_ASKED, "data"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(6)
def render(model_name, layer_name, image, cmap, reverse, scale, fixed=False, own_image=None, unit=None, _poll=None,
           shown_message=None, order=MAP_ORDERS[0], page=None, _asked=None):
    """The grid (for a layer of several pages, one page, which its meta describes to the page controls), input
    image and probabilities of the selected view (a test image, or the user's own while one is shown), and the query
    string that reopens it (the chosen unit is added by :func:`sync_query`); asked again while a background job
    computes the layer's fixed colour scale. A new number in the image box reaches it through ``IMAGE_ASKED``:
    an image stepped to with ◀ ▶ or the keys is drawn by the browser from the explorer-view route instead."""
    asks_again(shown_message)
    own_image = own_image.get("id") if isinstance(own_image, dict) else own_image
    if not model_name or not layer_name:
        raise InvalidInput("Choose a model and a layer.")
    view = ExploreView(
        model=inputs.name(model_name, "model"), layer=inputs.name(layer_name, "layer"),
        image=image if own_image is None else inputs.text(own_image, "your image", MAX_REFERENCE_CHARS),
        cmap=inputs.choice(cmap, "the colormap", COLORMAPS), reverse=inputs.flag(reverse), scale=inputs.flag(scale),
        fixed=inputs.flag(fixed), unit=chosen_unit(unit),
        order=inputs.choice(order or MAP_ORDERS[0], "the order of the maps", MAP_ORDERS),
        page=inputs.integer_or_none(page, 1))
    answer = explorer_answer(app_context(), view)
    return (answer.heatmap, answer.input_image, answer.probabilities, answer.caption, answer.query, [])


# The page controls follow the grid drawn, from its meta (app.figures.grids.mark_page), in the browser: shown with
# "maps 65–128 of 1,280" for a page of maps, hidden for a layer of one page; PAGE_SHOWN keeps the page's number,
# count and true map numbers for the page buttons and for clicks.
clientside_callback(
    ClientsideFunction(namespace="explorer", function_name="pageControls"),
    Output(PAGING, "hidden"),
    Output(PAGE_LABEL, "children"),
    Output(PAGE_SHOWN, "data"),
    Output(PAGE_PREVIOUS, "disabled"),
    Output(PAGE_NEXT, "disabled"),
    Input(HEATMAP, "figure"),
)


@callback(
    Output(PAGE, "data"),
    Input(PAGE_PREVIOUS, "n_clicks"),
    Input(PAGE_NEXT, "n_clicks"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    Input(ORDER, "value"),
    State(PAGE_SHOWN, "data"),
    prevent_initial_call=True,
)
def on_page_choice(_previous, _next, _model, _layer, _order, shown):
    """Previous / next page from the page drawn; a new model, layer or order starts again from the page holding the
    chosen unit (else the first)."""
    if ctx.triggered_id not in (PAGE_PREVIOUS, PAGE_NEXT):
        return None
    number = inputs.integer_or_none(shown.get("page"), 1) if isinstance(shown, dict) else None
    pages = inputs.integer_or_none(shown.get("pages"), 1) if isinstance(shown, dict) else None
    if number is None or pages is None:
        return no_update
    return min(max(1, number + (1 if ctx.triggered_id == PAGE_NEXT else -1)), pages)


@callback(
    Output(OWN_IMAGE, "data"),
    Output(PAD.preview, "src"),
    Output(PAD.message, "children"),
    Input(PAD.strokes, "data"),
    Input(PAD.upload, "contents"),
    Input(PAD.centre, "value"),
    State(IDS.model, "value"),
    State(IMAGE, "value"),
    State(OWN_IMAGE, "data"),
    prevent_initial_call=True,
)
def on_own_image(strokes, uploads, centre, model_name, test_image=None, shown=None):
    """A stroke ended (or Undo, an upload, the centring switch): the drawing or picture becomes the shown image,
    preprocessed as the model's training data was. Clearing the pad goes back to the test image when the drawing
    was shown; an image opened from a link stays until another is chosen."""
    drawn = isinstance(strokes, dict) and bool(strokes.get("strokes"))
    from_upload = ctx.triggered_id == PAD.upload or (ctx.triggered_id == PAD.centre and not drawn)
    source = shown.get("source") if isinstance(shown, dict) else None
    try:
        loaded = app_context().store.get(inputs.name(model_name, "model"))
        if from_upload and uploads:
            contents = uploads if isinstance(uploads, list) else [uploads]
            stored = [upload_image(loaded, inputs.text(item, "the upload", 2_000_000), centre) for item in contents]
            own, note, source = stored[0], (f"{len(stored)} pictures stored; showing the first." if len(stored) > 1
                                            else ""), "upload"
        elif drawn:
            own, note, source = pad_image(loaded, strokes, centre), "", "pad"
        elif ctx.triggered_id == PAD.strokes and source == "pad":
            return None, "", ""
        else:
            return no_update, no_update, no_update
    except ExplorerError as exc:
        return no_update, no_update, error_alert(exc)
    return ({"id": own.id, "over": test_image, "source": source}, f"/api/inputs/{own.id}/preview.png", note)


register_leaving_own_image(IMAGE, OWN_IMAGE)


clientside_callback(
    ClientsideFunction(namespace="explorer", function_name="ownImageNote"),
    Output(IMAGE, "className"),
    Output(IMAGE_NOTE, "children"),
    Input(OWN_IMAGE, "data"),
)


# The image box marked invalid, with the valid range as its tooltip, when it holds no test image's number (the
# message area says the same in words); in the browser, since every step changes the number.
clientside_callback(
    ClientsideFunction(namespace="explorer", function_name="checkImageBox"),
    Output(IMAGE, "invalid"),
    Output(IMAGE, "title"),
    Input(IMAGE, "value"),
    Input(IMAGE, "max"),
)


@callback(
    Output(OPEN_IN_COMPARE, "href"),
    Input(BASKET, "data"),
    Input(IDS.query, "data"),
    State(IDS.model, "value"),
    State(LAYER, "value"),
    State(IMAGE, "value"),
    State(CMAP, "value"),
    State(OWN_IMAGE, "data"),
)
def on_compare_choice_change(basket, _query, model_name, layer_name, image, cmap, own_image=None):
    """"open in compare": the basket with the shown image (a test image, or the user's own as its ``u:`` id)
    added at the end when it is not in it, at this model, layer and colormap."""
    shown = _shown_image(image, own_image)
    images, _ = add_to_basket(basket, [] if shown is None else [shown])
    return compare_link(inputs.name_or_none(model_name), images, inputs.name_or_none(layer_name),
                        cmap if cmap in COLORMAPS else None)


@callback(
    Output(BASKET, "data", allow_duplicate=True),
    Output(COMPARE_NOTE, "children"),
    Input(ADD_TO_COMPARE, "n_clicks"),
    State(BASKET, "data"),
    State(IMAGE, "value"),
    State(OWN_IMAGE, "data"),
    prevent_initial_call=True,
)
def on_add_to_compare(clicks, basket, image, own_image=None):
    """"add to compare": the shown image (a test image, or the user's own as its ``u:`` id) joins the end of the
    basket (a full basket says so)."""
    if not inputs.integer_or_none(clicks, 1):
        return no_update, no_update
    shown = _shown_image(image, own_image)
    if shown is None:
        return no_update, "Choose a test image first."
    new_basket, left_out = add_to_basket(basket, [shown])
    if left_out:
        return no_update, f"The basket is full ({len(new_basket)} images): remove one first."
    return new_basket, f"{'Image' if isinstance(shown, int) else 'Your image'} {shown} is in the basket."


def _shown_image(image, own_image) -> int | str | None:
    """What the view shows, as the basket holds it: the user's own image's ``u:`` id while one is shown, else the
    number box's test image (None if it holds no number)."""
    own = own_image.get("id") if isinstance(own_image, dict) else None
    if isinstance(own, str) and is_user_image(own):
        return own
    return inputs.integer_or_none(image, 0)


@callback(
    Output(UNIT.unit, "data"),
    Input(HEATMAP, "clickData"),
    Input(IDS.model, "value"),
    Input(LAYER, "value"),
    State(UNIT.unit, "data"),
    State(PAGE_SHOWN, "data"),
    prevent_initial_call=True,
)
def on_unit_choice(click_data, model_name, layer_name, current, page=None):
    """A click on a map or node chooses it (on a page of maps, by its true number); a new model or layer keeps the
    chosen unit where the layer has it."""
    if ctx.triggered_id in (IDS.model, LAYER):
        return unit_on_layer(current, model_name, layer_name)
    try:
        _, info = open_layer(model_name, layer_name)
    except ExplorerError:
        return clicked_unit(click_data, None)
    layout = layout_for(info.output_shape)
    if layer_page_size(info) is None:
        return clicked_unit(click_data, layout)
    units = _page_units(page)
    if units is None:  # the page drawn is not known (yet): a place on it names no map
        return no_update
    per_row = inputs.integer_or_none(page.get("per_row"), 1)
    page_layout = layout_for((layout.unit_height, layout.unit_width, len(units)), per_row)
    place = unit_from_click(click_data, page_layout)
    if place is None or place >= len(units) or units[place] >= layout.n_units:
        return no_update
    return {"unit": units[place], "clicked": True}


def _page_units(page) -> list[int] | None:
    """The true map numbers of the page drawn, from its store (any JSON may arrive); None when there are no pages
    or the store was not written by the page."""
    units = page.get("units") if isinstance(page, dict) else None
    if not isinstance(units, list) or not 0 < len(units) <= MAX_PAGE_UNITS:
        return None
    numbers = [inputs.integer_or_none(unit, 0) for unit in units]
    return None if None in numbers else numbers


# A new image reaches the attribution only while a method is on: with it off, a step costs no round trip.
clientside_callback(
    ClientsideFunction(namespace="explorer", function_name="attributionImage"),
    Output(ATTRIBUTION_IMAGE, "data"),
    Input(IMAGE, "value"),
    Input(OWN_IMAGE, "data"),
    State(ATTRIBUTION_METHOD, "value"),
    prevent_initial_call=True,
)


@callback(
    Output(ATTRIBUTION, "figure"),
    Output(ATTRIBUTION_CARD, "hidden"),
    Input(ATTRIBUTION_METHOD, "value"),
    Input(ATTRIBUTION_CLASS, "value"),
    Input(IDS.model, "value"),
    State(IMAGE, "value"),
    State(OWN_IMAGE, "data"),
    Input(ATTRIBUTION_IMAGE, "data"),
)
def render_attribution(method, target, model_name, image, own_image, _image_changed=None):
    """The attribution overlay of the shown image (a test image or the user's own) for the chosen class, or
    nothing when the method is off; what cannot be computed is said in the figure's title."""
    if not method:
        return no_update, True
    try:
        loaded = app_context().store.get(inputs.name(model_name, "model"))
        own = own_image.get("id") if isinstance(own_image, dict) else None
        shown = image_ref(loaded, image if own is None else inputs.text(own, "your image", MAX_REFERENCE_CHARS),
                          app_context().user_images)
        explained = explain(loaded, app_context().gradient_models, shown, method, inputs.integer(target, "the class"))
    except ExplorerError as exc:
        return {"data": [], "layout": {"title": {"text": str(exc)[:120], "font": {"size": 11}}}}, False
    shown_as = "your image" if shown.own else shown.name
    title = f"{METHOD_LABELS[explained.method]} · class {loaded.class_names[explained.target]} · {shown_as}"
    return attribution_figure(shown.pixels, explained.result.map, explained.method == "integrated_gradients",
                              title, explained.method), False
