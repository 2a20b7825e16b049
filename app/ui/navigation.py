"""The navigation bar every page shares: links that carry the user's place, and the compare basket.

The place (model, layer, colormap, current image) is published by each page's URL sync (``assets/explorer.js``)
into :data:`PLACE`; the links are rebuilt from it, so going from Explore to Compare keeps the layer, the colormap
and the image. The basket (the images picked for Compare, in the order picked) lives in the browser only
(:data:`BASKET`, local storage, shared by the tabs): a link never carries it, so opening a colleague's link keeps
your own picks; what Compare shows travels as its ``images=`` instead.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from app.ui.copy_link import copy_link_control
from app.ui.links import compare_link, place_links
from app.views.query import MAX_COMPARE_IMAGES, clean_place, parse_basket

PLACE = "app-place"
BASKET = "app-basket"
BASKET_BAR = "app-basket-bar"
BASKET_REMOVE = "app-basket-remove"  # pattern-matching: {"type": BASKET_REMOVE, "index": image number}
BASKET_CLEAR = "app-basket-clear"
BASKET_OPEN = "app-basket-open"
NAV_LINK = "app-nav-link"  # pattern-matching: {"type": NAV_LINK, "path": page path}
# Dash's own location component of the page container (dash.py's _ID_LOCATION): a Back or Forward changes it.
PAGES_LOCATION = "_pages_location"


STILL_COMPUTING_POLL = "still-computing-poll"
STILL_COMPUTING_POLL_MS = 2000


def navbar(title: str) -> dbc.Navbar:
    """The bar: the pages in their ``nav_order``, the compare basket, the API link; and the stores behind them."""
    ordered = sorted(
        (page for page in dash.page_registry.values() if page.get("nav_order") is not None),
        key=lambda page: page["nav_order"],
    )
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="partial" if page["path"] != "/"
                                else "exact", id={"type": NAV_LINK, "path": page["path"]}))
        for page in ordered
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand(title, href="/"),
                dbc.Nav(links, navbar=True, className="flex-row flex-wrap column-gap-2"),
                html.Div(id=BASKET_BAR, className="d-flex flex-wrap align-items-center gap-1 ms-auto me-2"),
                copy_link_control(),
                html.A("API", href="/api/models", className="nav-link text-light small", target="_blank"),
                dcc.Store(id=PLACE, data={}),
                # ticks only while a page shows a background job's progress (assets/still_computing.js)
                dcc.Interval(id=STILL_COMPUTING_POLL, interval=STILL_COMPUTING_POLL_MS, disabled=True),
                dcc.Store(id=BASKET, storage_type="local", data=[]),
            ],
            fluid=True,
            className="flex-wrap row-gap-1",  # on narrow windows the bar grows a row instead of scrolling sideways
        ),
        color="dark",
        dark=True,
        className="mb-3",
    )


def basket_bar(basket: list[int | str], place: dict) -> list:
    """The basket as the navigation bar shows it, in one line whatever it holds: its count, which unfolds (a
    native disclosure, no round trip) to each picked image with a remove button in the order picked (the user's own
    images by the start of their ``u:`` id) and "empty"; beside it "open in compare" at the place's model, layer
    and colormap."""
    if not basket:
        return [html.Span("Compare basket: empty", className="small text-light opacity-75",
                          title="the images picked for Compare (add them on Explore or Find images)")]
    items = [
        html.Span(
            [f"{_short(index)} ",
             html.Button("×", id={"type": BASKET_REMOVE, "index": index}, title=f"remove image {index}",
                         className="border-0 bg-transparent text-light p-0",
                         **{"aria-label": f"remove image {index}"})],
            className="badge text-bg-secondary basket-item", title=str(index), **{"data-image": index},
        )
        for index in basket
    ]
    href = compare_link(place.get("model"), basket, place.get("layer"), place.get("cmap"))
    # No `open` prop: React leaves the element's own open state alone, so removing an item keeps the list open.
    listing = html.Details(
        [
            html.Summary(f"Basket ({len(basket)}/{MAX_COMPARE_IMAGES})", className="small text-light",
                         title="the images picked for Compare: click to see or remove them"),
            html.Div([*items, dbc.Button("empty", id=BASKET_CLEAR, size="sm", color="link",
                                         className="py-0 text-light small")], className="basket-menu"),
        ],
        className="basket",
    )
    return [listing,
            dbc.Button("open in compare", id=BASKET_OPEN, href=href, size="sm", color="primary", className="py-0")]


def _short(image: int | str) -> str:
    """A basket item's label: the number, or the start of a user image's id (the badge's title holds it all)."""
    return str(image) if isinstance(image, int) else image[:8] + "…"


@callback(
    Output(BASKET_BAR, "children"),
    Output({"type": NAV_LINK, "path": ALL}, "href"),
    Input(BASKET, "data"),
    Input(PLACE, "data"),
    State({"type": NAV_LINK, "path": ALL}, "id"),
)
def on_place_or_basket_change(basket, place, link_ids):
    """The basket bar and every navigation link, rebuilt from the place and the basket."""
    basket, place = parse_basket(basket), clean_place(place)
    hrefs = place_links(place, basket)
    paths = [link.get("path") if isinstance(link, dict) and isinstance(link.get("path"), str) else None
             for link in (link_ids if isinstance(link_ids, list) else [])]
    return basket_bar(basket, place), [hrefs.get(path, path or "/") for path in paths]


@callback(
    Output(BASKET, "data", allow_duplicate=True),
    Input({"type": BASKET_REMOVE, "index": ALL}, "n_clicks"),
    Input(BASKET_CLEAR, "n_clicks"),
    State(BASKET, "data"),
    prevent_initial_call=True,
)
def on_remove(_removes, _clear, basket):
    """A remove button takes its image out of the basket; "empty" empties it (new buttons, not clicks, change
    nothing)."""
    if not ctx.triggered or not ctx.triggered[0]["value"]:
        return no_update
    if ctx.triggered_id == BASKET_CLEAR:
        return []
    index = ctx.triggered_id.get("index") if isinstance(ctx.triggered_id, dict) else None
    return [image for image in parse_basket(basket) if image != index]


def add_to_basket(basket, images: list[int | str]) -> tuple[list[int | str], list[int | str]]:
    """``basket`` with ``images`` appended in order (those already in it stay where they are), capped at
    :data:`MAX_COMPARE_IMAGES`.

    Returns:
        ``(new basket, images left out because it was full)``.
    """
    current = parse_basket(basket)
    left_out = []
    for image in images:
        if image in current:
            continue
        if len(current) >= MAX_COMPARE_IMAGES:
            left_out.append(image)
        else:
            current.append(image)
    return current, left_out

