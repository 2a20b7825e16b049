"""Every link to a view, built in one place, and the parsing of the URL parameters that reopen it.

Links keep commas readable (``images=3,12,40``) and keep ``image=0``: a copied link reopens exactly the view.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from urllib.parse import quote, urlencode

from app.core import limits
from app.core.errors import InvalidInput
from app.core.grid import COLORMAPS
from app.core.user_images import is_user_image
from app.views.compare import DEFAULT_IMAGES, CompareView
from app.views.explore import ExploreView
from app.views.train import TrainView

MAX_COMPARE_IMAGES = 8
# ASCII only (re's [0-9], unlike \d): what a number in a link looks like.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
MAX_DECIMAL_CHARS = 30


def query_string(params: dict) -> str:
    """``?a=1&b=2`` from the non-empty parameters, in the given order (``True`` as 1, ``False`` and None left out)."""
    # Identity checks, not `in (None, "", False)`: 0 == False would drop image=0 from links.
    kept = {key: value for key, value in params.items() if value is not None and value is not False and value != ""}
    if not kept:
        return ""
    return "?" + urlencode({k: (1 if v is True else v) for k, v in kept.items()}).replace("%2C", ",")


def grid_values_link(model_name: str, version: str, layer_name: str, image: int | str, scaled: bool) -> str:
    """Where the exact values of the explorer's grid of ``image`` at ``layer_name`` come from (the API's raw float32
    grid, ``app.api.models.get_grid``), for the hover label."""
    return f"/api/models/{quote(model_name, safe='')}/grid" + query_string(
        {"layer": layer_name, "image": image, "scaled": int(scaled), "version": version})


def explorer_link(model_name: str | None, layer_name: str | None = None, image: int | None = None,
                  cmap: str | None = None) -> str:
    """The explorer URL showing ``image`` (default 0) at ``layer_name`` of ``model_name`` in ``cmap`` (default
    the first colormap), as its :class:`ExploreView` writes it."""
    return "/" + ExploreView(model_name, layer_name, 0 if image is None else image,
                             cmap if cmap in COLORMAPS else COLORMAPS[0]).to_query()


def compare_link(model_name: str | None, images: Iterable[int | str], layer: str | None = None,
                 cmap: str | None = None) -> str:
    """The compare URL of ``images`` (test-image numbers and user images' ``u:`` ids, in the given order; none:
    Compare's default), as its :class:`CompareView` writes it."""
    listed = ",".join(str(image_item(i)) for i in images)
    return "/compare" + CompareView(model_name, layer, listed or DEFAULT_IMAGES,
                                    cmap if cmap in COLORMAPS else COLORMAPS[0]).to_query()


def training_link(probe: int | str) -> str:
    """The training page with its form watching ``probe`` (a test-image number or a user image's ``u:`` id)."""
    return "/train" + TrainView(probe=image_item(probe)).to_query()


def image_item(item) -> int | str | None:
    """A test-image number (a non-negative int, or its text) or a user image's id, else None."""
    if isinstance(item, str) and is_user_image(item.strip()):
        return item.strip()
    if isinstance(item, bool):
        return None
    value = item if isinstance(item, int) else parse_int(item.strip() if isinstance(item, str) else None, None)
    return value if value is not None and 0 <= value < 10**9 else None


MAX_QUERY_CHARS = 2000


def with_unit(query, unit: int | None) -> str | None:
    """A view's query string (from :func:`query_string`) with the chosen map or node appended as ``unit=``;
    None when ``query`` is not such a string (a callback's input may be any JSON)."""
    if not isinstance(query, str) or len(query) > MAX_QUERY_CHARS or (query and not query.startswith("?")):
        return None
    if unit is None:
        return query
    return query + ("&" if query else "?") + query_string({"unit": int(unit)})[1:]


# What travels from view to view (see :func:`place_links`): a page's URL parameters of these names.
PLACE_KEYS = ("model", "layer", "cmap", "image")
MAX_PLACE_TEXT = 200


def parse_basket(raw, limit: int = MAX_COMPARE_IMAGES) -> list[int | str]:
    """The compare basket from a URL parameter or the browser's store: image numbers and user images' ``u:`` ids
    (``"252,u:…,810"`` or a list), in the order picked, without repeats, at most ``limit``; anything malformed is
    skipped."""
    if isinstance(raw, str):
        items = raw[: limit * 24].split(",")
    elif isinstance(raw, list):
        items = raw[: limit * 4]
    else:
        return []
    basket: list[int | str] = []
    for item in items:
        value = image_item(item)
        if value is not None and value not in basket:
            basket.append(value)
    return basket[:limit]


def clean_place(raw) -> dict[str, str | int]:
    """The travelling part of a view (:data:`PLACE_KEYS`) from what the browser sent: short text for names, a
    non-negative integer or a user image's ``u:`` id for the image; anything else left out."""
    if not isinstance(raw, dict):
        return {}
    place: dict[str, str | int] = {}
    for key in ("model", "layer", "cmap"):
        value = raw.get(key)
        if isinstance(value, str) and 0 < len(value) <= MAX_PLACE_TEXT:
            place[key] = value
    image = image_item(raw.get("image"))
    if image is not None:
        place["image"] = image
    return place


def place_links(place: dict, basket: list[int | str]) -> dict[str, str]:
    """The navigation bar's link of every page, carrying the user's place (model, layer, colormap, image) and
    the compare basket, so that moving to another page keeps what is being looked at.

    Compare opens the basket's images, the current image first when it is not already in it; Explore opens the
    current image; the finder keeps the model.

    Args:
        place: from :func:`clean_place`.
        basket: from :func:`parse_basket`.

    Returns:
        ``{page path: href}`` for ``/``, ``/compare``, ``/finder``, ``/classes`` and ``/train``.
    """
    model, layer, cmap, image = (place.get(key) for key in PLACE_KEYS)
    carried = ",".join(map(str, basket)) or None
    images = ([image] if image is not None and image not in basket else []) + list(basket)
    return {
        "/": "/" + query_string({"model": model, "layer": layer, "image": image, "cmap": cmap, "basket": carried}),
        "/compare": "/compare" + query_string(
            {"model": model, "layer": layer, "images": ",".join(map(str, images[:MAX_COMPARE_IMAGES])) or None,
             "cmap": cmap, "basket": carried}),
        "/finder": "/finder" + query_string({"model": model, "basket": carried}),
        # the MLP view of Classes takes test images only
        "/classes": "/classes" + query_string({"model": model, "layer": layer, "cmap": cmap,
                                                "image": image if isinstance(image, int) else None,
                                                "basket": carried}),
        "/train": "/train" + query_string({"basket": carried}),
    }


def job_link(job_id: str) -> str:
    """The training page pinned to one job."""
    return "/train" + TrainView(job=job_id).to_query()


def first(raw) -> str | None:
    """A URL parameter as text: a repeated parameter (``?image=1&image=2`` arrives as a list) gives its first
    value; anything else that is not text gives None."""
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    return raw if isinstance(raw, str) else None


def parse_int(raw, default: int | None) -> int | None:
    """An integer from a URL parameter or input, ``default`` when missing or malformed.

    Strict (see :func:`app.core.limits.parse_int`): ASCII digits only, so ``"１"`` and ``"1_0"`` are malformed,
    not 1 and 10.
    """
    try:
        return limits.parse_int(first(raw) if isinstance(raw, list) else raw, "value")
    except InvalidInput:
        return default


def parse_float(raw, default: float | None) -> float | None:
    """A finite decimal number from a URL parameter (``0.5``, ``-1e-3``), ``default`` when missing or malformed.

    Python's ``float()`` also takes ``"１"``, ``"1_0"``, ``"nan"`` and ``"inf"``; a link never holds those.
    """
    text = first(raw)
    if text is None or len(text) > MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(text):
        return default
    value = float(text)
    return value if math.isfinite(value) else default


def parse_flag(raw) -> bool:
    """A boolean URL parameter: 1/true/yes/on."""
    text = first(raw)
    return text is not None and text.lower() in ("1", "true", "yes", "on")
