"""The frame of a model page: model choice with its notices, the controls card, the message area and the URL sync.

A page declares its controls and callbacks; everything else comes from here::

    IDS = PageIds("compare")
    register_url_sync(IDS)

    def layout(model=None, layer=None, **_other):
        choice = open_model(model)
        layers, layer_value = choice.layer_choice(layer, "Conv2D_3")
        return frame(IDS, choice, [labelled("Layer", ...)], html.Div(id=...))

Callbacks whose last output is the page's message area wrap themselves in :func:`reports_errors`, so a core error
(an unknown layer, an image out of range, a broken model) becomes that message instead of a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, clientside_callback, ctx, dcc, html, no_update
from dash.exceptions import MissingCallbackContextException, PreventUpdate

from app.context import app_context
from app.core.activations import LayerInfo
from app.core.errors import ExplorerError, StillComputing
from app.core.store import LoadedModel, default_model
from app.ui.components import default_layer, error_alert, is_still_computing, labelled, layer_options
from app.ui.inputs import name, shown
from app.ui.navigation import PLACE, STILL_COMPUTING_POLL


@dataclass(frozen=True)
class PageIds:
    """The component ids every framed page has, derived from the page's prefix (``explore-model``, ...)."""

    prefix: str

    @property
    def model(self) -> str:
        """The model dropdown."""
        return f"{self.prefix}-model"

    @property
    def message(self) -> str:
        """The notices above the controls (fallbacks, errors)."""
        return f"{self.prefix}-message"

    @property
    def notice(self) -> str:
        """The notices of the link that opened the page (an unknown model, layer or image): written once by the
        layout and never by a callback, so the first render cannot clear them."""
        return f"{self.prefix}-notice"

    @property
    def query(self) -> str:
        """The ``dcc.Store`` holding the query string that reopens the view."""
        return f"{self.prefix}-query"

    @property
    def query_sink(self) -> str:
        """The output of the clientside callback that copies :attr:`query` into the address bar."""
        return f"{self.prefix}-query-sink"


@dataclass
class ModelChoice:
    """What a page opens on, from one look at the store.

    Attributes:
        options: dropdown options of every model (broken ones disabled, with their reason).
        name: the model shown: the requested one if usable, else ``mnist-cnn``, else the first usable, else None.
        loaded: that model, opened (None when there is none).
        messages: alerts explaining a fallback, an empty store or a request that could not be honoured.
    """

    options: list[dict]
    name: str | None
    loaded: LoadedModel | None
    messages: list = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        """The model's class names (none without a model)."""
        return list(self.loaded.class_names) if self.loaded is not None else []

    def layer_choice(self, requested: str | None, fallback: str | None = None) -> tuple[list[dict], str | None]:
        """The layer dropdown's options and value: ``requested`` if the model has it (with a notice if it does not),
        else ``fallback`` if it has that, else its first layer with maps."""
        if self.loaded is None:
            return [], None
        engine = self.loaded.engine
        value = default_layer(engine, requested or fallback)
        if requested and requested != value:
            self.messages.append(error_alert(f"Layer {shown(requested)} is not in {self.name!r}; showing {value!r}."))
        return layer_options(engine), value

    def unit_choice(self, requested: int | None, layer_name: str | None) -> int | None:
        """The map or node a link chose (``unit=``, as its View read it) if ``layer_name`` has it, else None (with a
        notice when one was asked for)."""
        if requested is None or self.loaded is None or layer_name is None:
            return None
        info = self.loaded.engine.layer(layer_name)
        if not 0 <= requested < info.n_units:
            word = "maps" if info.is_map else "nodes"
            self.messages.append(error_alert(f"Unit {shown(str(requested))} is not in {info.name} (it has {word} "
                                             f"0-{info.n_units - 1}); no unit chosen."))
            return None
        return requested

    def own_image_choice(self, reference: str) -> str | None:
        """``reference`` if it names a stored user image, else None with a notice (a colleague's link must never
        show another image unannounced)."""
        try:
            app_context().user_images.get(reference)
        except ExplorerError as exc:
            self.messages.append(error_alert(f"Image {shown(reference)} is not available ({exc}); showing 0."))
            return None
        return reference


def open_model(requested: str | None) -> ModelChoice:
    """The :class:`ModelChoice` for a page asked to show model ``requested``."""
    store = app_context().store
    entries = store.entries()
    options = [
        {"label": entry.name if entry.ok else f"{entry.name} (broken: {entry.reason[:80]})", "value": entry.name,
         "disabled": not entry.ok}
        for entry in entries
    ]
    usable = [entry.name for entry in entries if entry.ok]
    chosen = requested if requested in usable else default_model(usable)
    messages = []
    if chosen is None:
        messages.append(error_alert("No usable model in the store: train one on the Train page."))
    elif requested and requested != chosen:
        messages.append(error_alert(f"Model {shown(requested)} is not available; showing {chosen!r}."))
    loaded = store.get(chosen) if chosen is not None else None
    return ModelChoice(options, chosen, loaded, messages)


def open_view(view_class, query: dict[str, Any]) -> tuple[Any, ModelChoice]:
    """For a page's ``layout(**query)``: its View read from the link (``view_class.from_query``) and the model it
    names opened, every notice of both (a malformed value, a model that is not there) among the choice's messages."""
    view, notices = view_class.from_query(query)
    choice = open_model(view.model)
    choice.messages.extend(error_alert(notice) for notice in notices)
    return view, choice


def open_named(model_name: Any) -> LoadedModel:
    """The model a callback was asked for, its name checked first (a callback's input may be any JSON).

    Raises:
        ExplorerError: not a name, no such model, or a broken one.
    """
    return app_context().store.get(name(model_name, "model"))


def open_layer(model_name: Any, layer_name: Any) -> tuple[LoadedModel, LayerInfo]:
    """The model and the layer a callback was asked for, both names checked first.

    Raises:
        ExplorerError: as :func:`open_named`, or the model has no such layer.
    """
    loaded = open_named(model_name)
    return loaded, loaded.engine.layer(name(layer_name, "layer"))


def model_layers(model_name: str, current_layer: str | None) -> tuple[LoadedModel, list[dict], str]:
    """For an on-model-change callback: the opened model, its layer options, and the layer to show (the current
    one if the new model has it).

    Raises:
        ExplorerError: the name is not a name, or the model cannot be opened.
    """
    loaded = open_named(model_name)
    return loaded, layer_options(loaded.engine), default_layer(loaded.engine, current_layer)


def controls_card(columns: list) -> dbc.Card:
    """The row of controls at the top of a page."""
    return dbc.Card(dbc.CardBody(dbc.Row(columns, className="g-2 align-items-end")), className="mb-3")


def frame(ids: PageIds, choice: ModelChoice, controls: list, *sections, model_width: int = 3) -> html.Div:
    """A model page: its notices, the model dropdown followed by ``controls``, the page's ``sections``, and the
    stores that keep the URL in step with the view."""
    model_dropdown = dcc.Dropdown(id=ids.model, options=choice.options, value=choice.name, clearable=False)
    return html.Div(
        [
            html.Div(choice.messages, id=ids.notice),
            html.Div(id=ids.message),
            controls_card([labelled("Model", model_dropdown, model_width), *controls]),
            *sections,
            dcc.Store(id=ids.query),
            dcc.Store(id=ids.query_sink),
        ]
    )


def register_url_sync(ids: PageIds) -> None:
    """Mirror a page's query string (kept in ``dcc.Store(ids.query)``) into the address bar, and publish the
    user's place to the navigation bar (see :mod:`app.ui.navigation`).

    Call once at import of the page module. The first query of a freshly built page replaces the URL (the link that
    opened it, completed); every later change of view is pushed, so Back and Forward move through views; the page
    is not rebuilt by it, and a copied link reopens the same view through ``layout(**query)``.
    """
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="syncQuery"),
        Output(ids.query_sink, "data"),
        Input(ids.query, "data"),
        State(ids.query_sink, "data"),
        State(PLACE, "data"),
    )


def register_image_stepping(image: str, previous: str, next_: str, random: str, view: str | None = None,
                            own_image: str | None = None) -> None:
    """Register a page's previous / next / random buttons on its test-image box ``image``: previous and next wrap
    around the test set, random picks any image, a malformed number counts as 0. Resolved in the browser
    (``assets/explorer.js`` stepImage), so a click costs one round trip, the view's, not two. Call once at import
    of the page module.

    With ``view`` (the store of the query string of the view drawn) and ``own_image`` (the store of the user's own
    image shown, if any), the browser also draws the stepped test image itself, from the explorer-view route
    (``assets/image_stepping.js``): no Dash callback runs on the server per step."""
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="stepImage"),
        Output(image, "value"),
        Input(previous, "n_clicks"),
        Input(next_, "n_clicks"),
        Input(random, "n_clicks"),
        State(image, "value"),
        State(image, "max"),
        *([State(view, "data"), State(own_image, "data")] if view else []),
        prevent_initial_call=True,
    )


def register_leaving_own_image(image: str, own_image: str) -> None:
    """Register the user's own image (the store ``own_image``) being left for the test image now in the box
    ``image`` (typed, stepped, random, keyboard); the number the box held when the own image was shown changes
    nothing. In the browser (``assets/explorer.js`` leaveOwnImage): answering with the store's own value would start
    a second render of every click. Call once at import of the page module."""
    clientside_callback(
        ClientsideFunction(namespace="explorer", function_name="leaveOwnImage"),
        Output(own_image, "data", allow_duplicate=True),
        Input(image, "value"),
        State(own_image, "data"),
        prevent_initial_call=True,
    )


def asks_again(shown_message) -> None:
    """In a callback that also listens to the navigation bar's still-computing poll: go on when the poll did not
    trigger it, or when ``shown_message`` (its message area now) is a still-computing note; else nothing to do
    (:class:`PreventUpdate`): another part of the page waits for a job, not this one."""
    try:
        polled = ctx.triggered_id == STILL_COMPUTING_POLL
    except MissingCallbackContextException:  # called as a plain function (the API, a test)
        return
    if polled and not is_still_computing(shown_message):
        raise PreventUpdate


def reports_errors(n_outputs: int, blank: Any = no_update, waiting: tuple | None = None):
    """Decorate a callback whose last output is a message area: a core error becomes that message.

    Args:
        n_outputs: how many outputs the callback has (the message is the last).
        blank: what every other output gets on an error: ``no_update`` (keep what is shown), or a tuple with one
            value per other output (e.g. to clear stale figures).
        waiting: what they get instead while a background job computes what they show (:class:`StillComputing`),
            e.g. charts that say so rather than empty axes; default: ``blank``.
    """
    blanks = tuple(blank) if isinstance(blank, tuple) else (blank,) * (n_outputs - 1)

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except StillComputing as exc:
                return (*(blanks if waiting is None else waiting), error_alert(exc))
            except ExplorerError as exc:
                return (*blanks, error_alert(exc))

        return wrapper

    return decorate
