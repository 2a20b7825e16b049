"""Every link to a view, built in one place: each page's link written by its View.

Links keep commas readable (``images=3,12,40``) and keep ``image=0``: a copied link reopens exactly the view.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlencode

from app.core.grid import COLORMAPS
from app.views.classes import ClassesView
from app.views.compare import DEFAULT_IMAGES, CompareView
from app.views.explore import ExploreView
from app.views.features import FeaturesView
from app.views.finder import FinderView
from app.views.query import MAX_COMPARE_IMAGES, PLACE_KEYS, image_key
from app.views.train import TrainView
from app.views.why import WhyView


def query_string(params: dict) -> str:
    """``?a=1&b=2`` from the non-empty parameters, in the given order (``True`` as 1, ``False`` and None left out)."""
    # Identity checks, not `in (None, "", False)`: 0 == False would drop image=0 from links.
    kept = {key: value for key, value in params.items() if value is not None and value is not False and value != ""}
    if not kept:
        return ""
    return "?" + urlencode({k: (1 if v is True else v) for k, v in kept.items()}).replace("%2C", ",")


def grid_values_link(model_name: str, version: str, layer_name: str, image: int | str, scaled: bool,
                     page: int | None = None, order: str | None = None) -> str:
    """Where the exact values of the explorer's grid of ``image`` at ``layer_name`` (for a paged layer: its
    ``page`` in ``order``) come from (the API's raw float32 grid, ``app.api.models.get_grid``), for the hover
    label."""
    return f"/api/models/{quote(model_name, safe='')}/grid" + query_string(
        {"layer": layer_name, "image": image, "scaled": int(scaled), "page": page, "order": order,
         "version": version})


def class_grid_values_link(model_name: str, version: str, layer_name: str, label: int | None = None,
                           pair: tuple[int, int] | None = None) -> str:
    """Where the exact values of the Classes page's mean grid of class ``label`` (or the difference of ``pair``)
    come from (``app.api.classes.class_grid``), for the hover label."""
    classes = {"label": label} if pair is None else {"a": pair[0], "b": pair[1]}
    return f"/api/models/{quote(model_name, safe='')}/class-grid" + query_string(
        {"layer": layer_name, **classes, "version": version})


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
    listed = ",".join(str(image_key(i)) for i in images)
    return "/compare" + CompareView(model_name, layer, listed or DEFAULT_IMAGES,
                                    cmap if cmap in COLORMAPS else COLORMAPS[0]).to_query()


def why_link(model_name: str | None, image: int | str | None = None, layer: str | None = None, a: int | None = None,
             b: int | None = None) -> str:
    """The "Why this prediction?" URL of ``image`` (a test-image number or a user image's ``u:`` id; default 0): how
    the nodes of ``layer`` (default: the last one feeding the output layer) push the logits of classes ``a`` and
    ``b`` (default: the predicted class and the runner-up), as its :class:`WhyView` writes it."""
    return "/why" + WhyView(model_name, layer, 0 if image is None else image, a, b).to_query()


def training_link(probe: int | str) -> str:
    """The training page with its form watching ``probe`` (a test-image number or a user image's ``u:`` id)."""
    return "/train" + TrainView(probe=image_key(probe)).to_query()


def place_links(place: dict, basket: list[int | str]) -> dict[str, str]:
    """The navigation bar's link of every page, carrying the user's place (model, layer, colormap, image), so
    that moving to another page keeps what is being looked at; each written by its page's View, with what the
    place does not say left out (the page's defaults).

    Compare opens the basket's images, the current image first when it is not already in it; Explore and
    Features open the current image (Features a test image: it explains test images only); the finder keeps the
    model. No link carries the basket itself: it stays in the browser.

    Args:
        place: from :func:`app.views.query.clean_place`.
        basket: from :func:`app.views.query.parse_basket`.

    Returns:
        ``{page path: href}`` for ``/``, ``/compare``, ``/finder``, ``/classes``, ``/why``, ``/features`` and
        ``/train``.
    """
    model, layer, cmap, image = (place.get(key) for key in PLACE_KEYS)
    test_image = image if isinstance(image, int) else None
    images = ([image] if image is not None and image not in basket else []) + list(basket)
    listed = ",".join(map(str, images[:MAX_COMPARE_IMAGES])) or None
    return {
        "/": "/" + ExploreView(model, layer, image, cmap).to_query(),
        "/compare": "/compare" + CompareView(model, layer, listed, cmap).to_query(),
        "/finder": "/finder" + FinderView(model).to_query(),
        # the page's default pair of classes, and the test image its link to "Why this prediction?" names
        "/classes": "/classes" + ClassesView(model, layer, a=None, b=None, cmap=cmap, image=test_image).to_query(),
        # its layer is a vector layer feeding the output, not the place's (a conv layer, as often as not)
        "/why": "/why" + WhyView(model, None, image).to_query(),
        "/features": "/features" + FeaturesView(model, layer, image=test_image or 0).to_query(),
        "/train": "/train" + TrainView().to_query(),
    }


def job_link(job_id: str) -> str:
    """The training page pinned to one job."""
    return "/train" + TrainView(job=job_id).to_query()
