"""Every link to a view, built in one place, and the parsing of the URL parameters that reopen it.

Links keep commas readable (``images=3,12,40``) and keep ``image=0``: a copied link reopens exactly the view.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from urllib.parse import urlencode

from app.core import limits
from app.core.errors import InvalidInput

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
