"""Image finder: the test set as thumbnails, filtered and sorted, beside the model's confusion matrix.

Clicking a matrix cell lists exactly the images in it (e.g. 4s predicted as 9). "Looks like" two ways: by the
model's P(class) (``sort=probability-desc&prob=9``, each caption then shows P(9)), or by a layer's own view
(``sort=likeness&prob=9&likeness_layer=Dense_1``: nearest first to the mean output of the 9s at that layer, each caption
showing that distance). Picking thumbnails builds a link that opens them on the compare page. The filters live in
the URL (``/finder?model=mnist-cnn&true=4&predicted=9&correct=wrong&conf=0.5,1&sort=confidence-asc``).
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html, no_update

from app.context import app_context
from app.core.errors import ExplorerError, InvalidInput
from app.core.finder import CORRECTNESS as CORRECTNESS_CHOICES
from app.core.finder import SORT_ORDERS, ImageQuery, model_confusion, model_find_images
from app.figures.comparison import confusion_figure
from app.ui import inputs
from app.ui.components import class_options, figure_card, kept_choice, labelled, layer_options
from app.ui.links import compare_link
from app.ui.navigation import BASKET, STILL_COMPUTING_POLL, add_to_basket
from app.ui.page import PageIds, asks_again, frame, open_named, open_view, register_url_sync, reports_errors
from app.ui.thumbnails import distance_label, image_caption, image_png, probability_label
from app.views.finder import FinderView
from app.views.query import MAX_COMPARE_IMAGES, parse_basket

dash.register_page(__name__, path="/finder", name="Find images", title="Find images · CNN Activation Explorer",
                   nav_order=2)

MAX_THUMBNAILS = 200
IDS = PageIds("finder")
TRUE_CLASS = "finder-true"
PREDICTED_CLASS = "finder-predicted"
CORRECTNESS = "finder-correctness"
CONFIDENCE = "finder-confidence"
SORT = "finder-sort"
CONFUSION = "finder-confusion"
GALLERY = "finder-gallery"
PICK = "finder-pick"  # pattern-matching: {"type": PICK, "index": image number}, one checkbox per thumbnail
COUNT = "finder-count"
COMPARE_LINK = "finder-compare-link"
OPEN_COMPARE = "finder-open-compare"
PROBABILITY_CLASS = "finder-probability-class"
CLOSEST = "finder-closest"
CLOSEST_CELL = "finder-closest-cell"
CLOSEST_BY_LIKENESS = "finder-closest-by-likeness"
LIKENESS_LAYER = "finder-likeness-layer"

# At most ~165 px of text, which the Sort-by box shows whole at any width; "class" is the one chosen beside it
SORT_LABELS = {"confidence-asc": "least confident first", "confidence-desc": "most confident first",
               "index": "image number", "probability-desc": "highest P(class) first",
               "probability-asc": "lowest P(class) first", "likeness": "nearest class mean"}
CORRECTNESS_LABELS = {"all": "all", "correct": "correct", "wrong": "wrong"}

register_url_sync(IDS)


def _likeness_layer(options: list[dict], wanted: str | None) -> str | None:
    """The layer the likeness order compares: ``wanted`` if the model has it, else the last before the output
    (the representation the output reads the class from)."""
    return kept_choice(wanted, options, max(len(options) - 2, 0))


def _class_or_any(value: int | None, n_classes: int) -> int | None:
    """A class of the model, or None (any) for one it lacks."""
    return value if value is not None and 0 <= value < n_classes else None


QUERY_KEYS = FinderView.keys()  # what a link of this page may say (the hostile-URL tests read it)


def layout(**query):
    """The page, opened with the filters of the query string (:meth:`FinderView.from_query`; invalid values fall
    back to "any", with a notice)."""
    view, choice = open_view(FinderView, query)
    classes, n_classes, layers, layer = [], 0, [], None
    if choice.loaded is not None:
        classes, n_classes = class_options(choice.loaded.class_names), len(choice.loaded.class_names)
        layers = layer_options(choice.loaded.engine)
        layer = _likeness_layer(layers, view.likeness_layer)
    controls = [
        labelled("True class", dcc.Dropdown(id=TRUE_CLASS, options=classes,
                                            value=_class_or_any(view.true, n_classes), placeholder="any"), 2),
        labelled("Predicted class", dcc.Dropdown(id=PREDICTED_CLASS, options=classes,
                                                 value=_class_or_any(view.predicted, n_classes), placeholder="any"),
                 2),
        labelled(
            "Prediction",
            dbc.RadioItems(
                id=CORRECTNESS,
                options=[{"label": label, "value": value} for value, label in CORRECTNESS_LABELS.items()],
                value=view.correct,
                inline=True,
                className="small",
            ),
            2,
        ),
        labelled(
            "Confidence (probability of the predicted class)",
            dcc.RangeSlider(id=CONFIDENCE, min=0, max=1, step=0.01, value=list(view.conf),
                            marks={0: "0", 0.5: "0.5", 1: "1"}, tooltip={"placement": "bottom"}),
            2,
        ),
        labelled(
            "Sort by",
            dcc.Dropdown(id=SORT, options=[{"label": v, "value": k} for k, v in SORT_LABELS.items()],
                         value=view.sort, clearable=False),
            3,  # 2/12 cuts the shown order in windows 992-1400 px wide
        ),
        labelled("Class (to sort by)",
                 dcc.Dropdown(id=PROBABILITY_CLASS, options=classes, value=_class_or_any(view.prob, n_classes),
                              placeholder="none"), 2),
        labelled("Layer (for “nearest class mean”)",
                 dcc.Dropdown(id=LIKENESS_LAYER, options=layers, value=layer, clearable=False), 3),
    ]
    results = dbc.Row(
        [
            dbc.Col(
                [
                    figure_card(CONFUSION, "430px"),
                    html.Div("Click a cell to list its images (row: true class, column: predicted).",
                             className="small text-muted"),
                    html.Div(dbc.Button("", id=CLOSEST, size="sm", color="secondary", outline=True,
                                        className="mt-1", style={"display": "none"})),
                    html.Div(dbc.Button("", id=CLOSEST_BY_LIKENESS, size="sm", color="secondary", outline=True,
                                        className="mt-1", style={"display": "none"})),
                    dcc.Store(id=CLOSEST_CELL),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    dbc.Row(
                        [
                            dbc.Col(html.Div(id=COUNT, className="small"), width="auto"),
                            dbc.Col(html.Div(id=COMPARE_LINK), width="auto"),
                        ],
                        className="g-2 align-items-center mb-2",
                    ),
                    dcc.Loading(html.Div(id=GALLERY, className="d-flex flex-wrap"), delay_show=300),
                ],
                md=8,
            ),
        ]
    )
    return frame(IDS, choice, controls, results, model_width=2)


@callback(
    Output(TRUE_CLASS, "options"),
    Output(PREDICTED_CLASS, "options"),
    Output(TRUE_CLASS, "value", allow_duplicate=True),
    Output(PREDICTED_CLASS, "value", allow_duplicate=True),
    Output(LIKENESS_LAYER, "options"),
    Output(LIKENESS_LAYER, "value"),
    Input(IDS.model, "value"),
    State(LIKENESS_LAYER, "value"),
    prevent_initial_call=True,
)
def on_model_change(model_name, likeness_layer=None):
    """A new model: its class names (the class filters reset) and its layers (the likeness layer kept where the
    new model has it)."""
    try:
        loaded = open_named(model_name)
    except ExplorerError:
        return [], [], None, None, [], None
    options, layers = class_options(loaded.class_names), layer_options(loaded.engine)
    return options, options, None, None, layers, _likeness_layer(layers, likeness_layer)


@callback(
    Output(TRUE_CLASS, "value", allow_duplicate=True),
    Output(PREDICTED_CLASS, "value", allow_duplicate=True),
    Output(CORRECTNESS, "value"),
    Output(CONFIDENCE, "value"),
    Output(CLOSEST, "children"),
    Output(CLOSEST, "style"),
    Output(CLOSEST_BY_LIKENESS, "children"),
    Output(CLOSEST_BY_LIKENESS, "style"),
    Output(CLOSEST_CELL, "data"),
    Input(CONFUSION, "clickData"),
    State(LIKENESS_LAYER, "value"),
    prevent_initial_call=True,
)
def on_cell_click(click_data, likeness_layer=None):
    """A confusion-matrix cell: exactly its images (other filters reset to "any"), and for an off-diagonal cell
    the offer of the true class's images closest to the other class, by the model's probability and by the
    likeness layer's own view (useful when the cell is empty)."""
    try:
        point = click_data["points"][0]
        true_class, predicted_class = inputs.integer_or_none(point["y"], 0), inputs.integer_or_none(point["x"], 0)
    except (TypeError, KeyError, IndexError):
        return (no_update,) * 9
    if true_class is None or predicted_class is None:
        return (no_update,) * 9
    hidden = {"display": "none"}
    if true_class == predicted_class:
        return true_class, predicted_class, "all", [0.0, 1.0], "", hidden, "", hidden, None
    offer = f"class {true_class} closest to class {predicted_class} (by P({predicted_class}))"
    layer = inputs.name_or_none(likeness_layer)
    by_likeness = f"... or nearest the mean {predicted_class} at {layer}" if layer else ""
    return (true_class, predicted_class, "all", [0.0, 1.0], offer, {}, by_likeness, {} if layer else hidden,
            [true_class, predicted_class])


@callback(
    Output(TRUE_CLASS, "value", allow_duplicate=True),
    Output(PREDICTED_CLASS, "value", allow_duplicate=True),
    Output(PROBABILITY_CLASS, "value"),
    Output(SORT, "value"),
    Input(CLOSEST, "n_clicks"),
    State(CLOSEST_CELL, "data"),
    prevent_initial_call=True,
)
def on_closest(clicks, cell):
    """"closest to the other class": every image of the cell's true class, sorted by the probability of the
    cell's predicted class, highest first, whatever the model predicted."""
    if not inputs.integer_or_none(clicks, 1) or not isinstance(cell, list) or len(cell) != 2:
        return (no_update,) * 4
    true_class, other = (inputs.integer_or_none(value, 0) for value in cell)
    if true_class is None or other is None:
        return (no_update,) * 4
    return true_class, None, other, "probability-desc"


@callback(
    Output(TRUE_CLASS, "value", allow_duplicate=True),
    Output(PREDICTED_CLASS, "value", allow_duplicate=True),
    Output(PROBABILITY_CLASS, "value", allow_duplicate=True),
    Output(SORT, "value", allow_duplicate=True),
    Input(CLOSEST_BY_LIKENESS, "n_clicks"),
    State(CLOSEST_CELL, "data"),
    prevent_initial_call=True,
)
def on_closest_by_likeness(clicks, cell):
    """The same offer by the likeness layer's own view: every image of the cell's true class, nearest first to
    the mean output of the cell's predicted class."""
    chosen = on_closest(clicks, cell)
    return chosen if chosen[0] is no_update else (*chosen[:3], "likeness")


def _thumbnail(loaded, index: int, predicted: int, confidence: float, picked: bool = False,
               ordered_by: str | None = None) -> html.Div:
    """One gallery item: the image (red frame when misclassified), its caption and a "compare" checkbox; the
    caption shows ``ordered_by`` (the value the list is ordered by, e.g. ``P(9) 0.43``) instead of the confidence
    when given.

    A plain grid of checkboxes rather than a ``dcc.Checklist``: Dash 4 renders checklist options as a virtualised
    vertical list, which cannot wrap into a gallery.
    """
    label = int(loaded.labels[index])
    wrong = label != predicted
    picture = html.Img(
        src=image_png(loaded.images[index]),
        title=f"image {index}: true {loaded.class_names[label]}, predicted {loaded.class_names[predicted]} "
              f"({confidence:.0%})",
        style={"width": "56px", "height": "56px", "imageRendering": "pixelated",
               "border": f"2px solid {'#d62728' if wrong else '#ccc'}"},
    )
    caption = html.Div(image_caption(index, label, predicted, confidence, loaded.class_names, ordered_by),
                       className="small text-center", style={"lineHeight": "1.1"})
    pick = dbc.Checkbox(id={"type": PICK, "index": index}, value=picked, label="pick", className="small",
                        label_class_name="small")
    return html.Div([picture, caption, pick], className="m-1", style={"width": "64px"}, **{"data-image": index})


def _ordering_values(loaded, query: ImageQuery, shown) -> list[str] | None:
    """What each shown image's caption says in place of the confidence, when the list is ordered by another
    number: ``P(9) 0.43`` (by P(class)) or ``d(9) 8.1`` (by the layer's distance to the class's mean); None
    otherwise."""
    if query.sorted_by_probability_of is not None:
        other = query.sorted_by_probability_of
        column = app_context().statistics.predictions(loaded)[shown, other]
        return [probability_label(loaded.class_names[other], float(value)) for value in column]
    if query.sort == "likeness":
        other = query.probability_class
        column = app_context().statistics.class_distances(loaded, query.likeness_layer)[shown, other]
        return [distance_label(loaded.class_names[other], float(value)) for value in column]
    return None


def _confidence_range(raw) -> tuple[float, float]:
    """The confidence slider's ``[low, high]`` (None: the whole range); the range itself is checked by the query."""
    if raw is None:
        return 0.0, 1.0
    if not isinstance(raw, list) or len(raw) != 2:
        raise InvalidInput(f"the confidence range must be two numbers, got {inputs.shown(raw)}")
    return inputs.number(raw[0], "the lowest confidence"), inputs.number(raw[1], "the highest confidence")


@callback(
    Output(GALLERY, "children"),
    Output(COUNT, "children"),
    Output(CONFUSION, "figure"),
    Output(IDS.query, "data"),
    Output(IDS.message, "children", allow_duplicate=True),
    Input(IDS.model, "value"),
    Input(TRUE_CLASS, "value"),
    Input(PREDICTED_CLASS, "value"),
    Input(CORRECTNESS, "value"),
    Input(CONFIDENCE, "value"),
    Input(SORT, "value"),
    Input(PROBABILITY_CLASS, "value"),
    Input(LIKENESS_LAYER, "value"),
    State(BASKET, "data"),
    Input(STILL_COMPUTING_POLL, "n_intervals"),
    State(IDS.message, "children"),
    prevent_initial_call="initial_duplicate",
)
@reports_errors(5)
def render(model_name, true_class, predicted_class, correctness, confidence, sort, probability_class,
           likeness_layer=None, basket=None, _poll=None, shown_message=None):
    """The matching thumbnails (at most :data:`MAX_THUMBNAILS`), their count and the confusion matrix (asked
    again while a background job computes the test set's predictions or the distances a likeness order needs)."""
    asks_again(shown_message)
    if not model_name:
        raise InvalidInput("Choose a model.")
    true_class = inputs.optional_integer(true_class, "the true class")
    predicted_class = inputs.optional_integer(predicted_class, "the predicted class")
    correctness = inputs.choice(correctness or "all", "the prediction filter", CORRECTNESS_CHOICES)
    sort = inputs.choice(sort or "confidence-asc", "the sort order", SORT_ORDERS)
    probability_class = inputs.optional_integer(probability_class, "the probability's class")
    if sort.startswith("probability") and probability_class is None:
        raise InvalidInput("Choose the class whose probability to sort by.")
    if sort == "likeness" and probability_class is None:
        raise InvalidInput("Choose the class to look like (Class, to sort by).")
    likeness_layer = inputs.name(likeness_layer, "the layer") if likeness_layer else None
    low, high = _confidence_range(confidence)
    query = ImageQuery(true_class, predicted_class, correctness, low, high, sort, probability_class,
                       likeness_layer=likeness_layer if sort == "likeness" else None)
    loaded = open_named(model_name)
    indices = model_find_images(loaded, query, app_context().statistics)
    matrix = model_confusion(loaded, app_context().statistics)
    probabilities = app_context().statistics.predictions(loaded)
    shown = indices[:MAX_THUMBNAILS]
    picked = set(parse_basket(basket))
    # a list ordered by a number shows that number, so a reader sees how close each image comes to the class
    values = _ordering_values(loaded, query, shown)
    thumbnails = [
        _thumbnail(loaded, int(i), int(probabilities[i].argmax()), float(probabilities[i].max()), int(i) in picked,
                   None if values is None else value)
        for i, value in zip(shown, values or [None] * len(shown), strict=True)
    ]
    count = f"{len(indices)} image{'s' if len(indices) != 1 else ''} match"
    if len(indices) > len(shown):
        count += f"; showing the first {len(shown)}"
    if query.sort == "likeness":
        wanted = loaded.class_names[probability_class]
        count += (f" · nearest first to the mean {wanted} at {likeness_layer}: the Euclidean distance (d) of each "
                  f"image's {likeness_layer} output to the mean output of the test set's {wanted}s")
    selected = (true_class, predicted_class) if true_class is not None and predicted_class is not None else None
    url = FinderView(loaded.name, true_class, predicted_class, correctness, (low, high), sort,
                     probability_class, likeness_layer).to_query()
    return thumbnails, count, confusion_figure(matrix, loaded.class_names, selected), url, []


@callback(
    Output(BASKET, "data", allow_duplicate=True),
    Input({"type": PICK, "index": ALL}, "value"),
    State({"type": PICK, "index": ALL}, "id"),
    State(BASKET, "data"),
    prevent_initial_call=True,
)
def on_pick(picked, ids, basket):
    """A ticked thumbnail joins the end of the compare basket, an unticked one leaves it; the basket keeps the order
    in which images were picked, across filter changes (a new gallery is ticked from the basket, so showing it
    changes nothing). Images beyond the compare limit are not added (the link says so).

    The checkboxes' ids carry the image numbers; an id or a value that is not what the gallery made is skipped.
    """
    if not isinstance(picked, list) or not isinstance(ids, list) or len(picked) != len(ids):
        return no_update
    current = parse_basket(basket)
    ticked, unticked = [], set()
    for component, value in zip(ids, picked, strict=True):
        index = inputs.integer_or_none(component.get("index"), 0) if isinstance(component, dict) else None
        if index is None or not isinstance(value, bool):
            continue
        if value and index not in current:
            ticked.append(index)
        elif not value and index in current:
            unticked.add(index)
    if not ticked and not unticked:
        return no_update
    new_basket, _ = add_to_basket([image for image in current if image not in unticked], ticked)
    return new_basket


@callback(
    Output(COMPARE_LINK, "children"),
    Input(BASKET, "data"),
    Input({"type": PICK, "index": ALL}, "value"),
    State({"type": PICK, "index": ALL}, "id"),
    State(IDS.model, "value"),
)
def on_basket_change(basket, picked, ids, model_name):
    """The picked images (the compare basket, in the order picked) as a link to the compare page; a tick the full
    basket could not take is pointed out."""
    chosen = parse_basket(basket)
    if not chosen:
        return html.Span(f"Pick up to {MAX_COMPARE_IMAGES} images to compare them.", className="small text-muted")
    pairs = zip(ids, picked, strict=True) if isinstance(ids, list) and isinstance(picked, list) and \
        len(ids) == len(picked) else []
    refused = [component.get("index") for component, value in pairs
               if value is True and isinstance(component, dict) and component.get("index") not in chosen]
    note = f" (the basket is full: {MAX_COMPARE_IMAGES} at most)" if refused else ""
    return dbc.Button(f"Compare {len(chosen)} picked image{'s' if len(chosen) != 1 else ''}{note}",
                      id=OPEN_COMPARE, href=compare_link(inputs.name_or_none(model_name), chosen), size="sm",
                      color="primary")
