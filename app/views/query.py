"""Reading a view's values from a link's query and writing them back, one contract per kind of value.

Reading is lenient, as a link must be: a value that cannot be read falls back to its default, and the caller
gets a sentence saying so. Writing keeps a link readable (commas as they are) and exact (``image=0`` is kept).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import urlencode

from app.core.errors import InvalidInput
from app.core.limits import parse_int, shown
from app.core.user_images import is_user_image, names_user_image

# The longest name (model, layer) a link is read with: model names are at most 64 characters, nested layers'
# "outer/inner" a little more.
MAX_NAME_CHARS = 200
TRUE_WORDS = ("1", "true", "yes", "on")
# What a decimal in a link looks like: ASCII only, no "nan" or "inf"; at most MAX_DECIMAL_CHARS (any float's
# shortest exact text, such as 0.011451901603914296, fits).
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
MAX_DECIMAL_CHARS = 32


def text_value(query: Mapping[str, Any], key: str) -> str | None:
    """A parameter as text: the first of a repeated one (Dash passes lists); None when missing or not text."""
    raw = query.get(key)
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    return raw if isinstance(raw, str) else None


def name_value(query: Mapping[str, Any], key: str) -> str | None:
    """A model or layer name (checked against the store when the view is drawn); None when missing or empty."""
    text = text_value(query, key)
    return text[:MAX_NAME_CHARS] if text else None


def flag_value(query: Mapping[str, Any], key: str) -> bool:
    """A switch: on for 1, true, yes or on."""
    return (text_value(query, key) or "").lower() in TRUE_WORDS


def choice_value(query: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed`` (the first when the link names another)."""
    text = text_value(query, key)
    return text if text in allowed else allowed[0]


def number_value(query: Mapping[str, Any], key: str, what: str, notices: list[str],
                 fallback: str = "none chosen") -> int | None:
    """A whole number of at least 0; None when missing, or (with a notice naming ``what`` and the ``fallback``)
    malformed."""
    text = text_value(query, key)
    if not text:
        return None
    try:
        return parse_int(text, key, 0)
    except InvalidInput:
        notices.append(f"{what} {shown(text)} is not a whole number of 0 or more; {fallback}.")
        return None


def image_value(query: Mapping[str, Any], key: str, notices: list[str],
                fallback: str = "none chosen") -> int | str | None:
    """A test-image number or a user image's id ``u:<id>``; None when missing, or (with a notice ending in
    ``fallback``) malformed."""
    text = text_value(query, key)
    if not text:
        return None
    if names_user_image(text):
        if is_user_image(text):
            return text
        notices.append(f"Image {shown(text)} is not an image id; {fallback}.")
        return None
    try:
        return parse_int(text, key, 0)
    except InvalidInput:
        notices.append(f"Image {shown(text)} is not a whole number; {fallback}.")
        return None


def fraction_range_value(query: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    """``low,high`` with 0 <= low <= high <= 1 (ASCII decimals, no ``nan``); None when missing or malformed."""
    parts = (text_value(query, key) or "").split(",")
    if len(parts) != 2 or not all(len(part) <= MAX_DECIMAL_CHARS and DECIMAL.fullmatch(part) for part in parts):
        return None
    low, high = (float(part) for part in parts)
    return (low, high) if 0 <= low <= high <= 1 else None


def query_of(values: Mapping[str, Any]) -> str:
    """``?a=1&b=2`` from the values that are set, in order: ``True`` as 1; None and ``False`` left out."""
    kept = {key: 1 if value is True else value for key, value in values.items()
            if value is not None and value is not False}
    return "?" + urlencode(kept, safe=",") if kept else ""


class LinkView:
    """What every page's View (a dataclass) has: the names of the query parameters its link may carry, its
    fields."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The query parameters a link of this view may carry."""
        return tuple(field.name for field in fields(cls))
