"""Every link to a view, built in one place, and the parsing of the URL parameters that reopen it.

Links keep commas readable (``images=3,12,40``) and keep ``image=0``: a copied link reopens exactly the view.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

MAX_COMPARE_IMAGES = 8


def query_string(params: dict) -> str:
    """``?a=1&b=2`` from the non-empty parameters, in the given order (``True`` as 1, ``False`` and None left out)."""
    # Identity checks, not `in (None, "", False)`: 0 == False would drop image=0 from links.
    kept = {key: value for key, value in params.items() if value is not None and value is not False and value != ""}
    if not kept:
        return ""
    return "?" + urlencode({k: (1 if v is True else v) for k, v in kept.items()}).replace("%2C", ",")


def explorer_link(model_name: str | None, layer_name: str | None = None, image: int | None = None) -> str:
    """The explorer URL showing ``image`` at ``layer_name`` of ``model_name``."""
    return "/" + query_string({"model": model_name, "layer": layer_name, "image": image})


def compare_link(model_name: str | None, images: Iterable[int], layer: str | None = None) -> str:
    """The compare URL of ``images``, in the given order."""
    return "/compare" + query_string(
        {"model": model_name, "layer": layer, "images": ",".join(str(int(i)) for i in images)}
    )


def job_link(job_id: str) -> str:
    """The training page pinned to one job."""
    return "/train" + query_string({"job": job_id})


def parse_int(raw, default: int | None) -> int | None:
    """An integer from a URL parameter or input, ``default`` when missing or malformed."""
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def parse_flag(raw) -> bool:
    """A boolean URL parameter: 1/true/yes/on."""
    return str(raw).lower() in ("1", "true", "yes", "on")
