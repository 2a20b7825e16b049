"""Reading a view's values from a link's query and writing them back, one contract per kind of value.

Reading is lenient, as a link must be: a value that cannot be read falls back to its default, and the caller
gets a sentence saying so. The strict parsers of :mod:`app.core.parsing` do the reading; this is the one place
that catches what they refuse. Writing keeps a link readable (commas as they are) and exact (``image=0`` is kept).

What travels from page to page with the navigation bar is read here too: the compare basket
(:func:`parse_basket`, from the browser's store) and the user's place (:func:`clean_place`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import urlencode

from app.core.errors import InvalidInput
from app.core.parsing import parse_float, parse_int, shown
from app.core.user_images import is_user_image, names_user_image

# The longest name (model, layer) a link is read with: model names are at most 64 characters, nested layers'
# "outer/inner" a little more.
MAX_NAME_CHARS = 200
TRUE_WORDS = ("1", "true", "yes", "on")
# The most images Compare shows, and so the most the compare basket holds.
MAX_COMPARE_IMAGES = 8
# The largest test-image number a link or the basket names: beyond any test set, within every integer type.
MAX_IMAGE_NUMBER = 10**9 - 1
# What travels from view to view (see :func:`clean_place`): a page's URL parameters of these names.
PLACE_KEYS = ("model", "layer", "cmap", "image")


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


def page_value(query: Mapping[str, Any], key: str, notices: list[str],
               fallback: str = "showing the first") -> int | None:
    """A page number, from 1; None when missing, or (with a notice ending in ``fallback``) malformed or 0."""
    text = text_value(query, key)
    if not text:
        return None
    try:
        return parse_int(text, key, 1)
    except InvalidInput:
        notices.append(f"Page {shown(text)} is not a page number (they count from 1); {fallback}.")
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
    if len(parts) != 2:
        return None
    try:
        low, high = (parse_float(part, key) for part in parts)
    except InvalidInput:
        return None
    return (low, high) if 0 <= low <= high <= 1 else None


def image_key(raw: Any) -> int | str | None:
    """How a link or the basket names an image: a test-image number (a non-negative int, or its ASCII digits) or a
    user image's id ``u:<id>``, surrounding spaces ignored; None for anything else."""
    if isinstance(raw, str):
        raw = raw.strip()
        if is_user_image(raw):
            return raw
    try:
        return parse_int(raw, "image", 0, MAX_IMAGE_NUMBER)
    except InvalidInput:
        return None


def parse_basket(raw: Any, limit: int = MAX_COMPARE_IMAGES) -> list[int | str]:
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
        value = image_key(item)
        if value is not None and value not in basket:
            basket.append(value)
    return basket[:limit]


def clean_place(raw: Any) -> dict[str, str | int]:
    """The travelling part of a view (:data:`PLACE_KEYS`) from what the browser sent: short text for names, a
    test-image number or a user image's ``u:`` id for the image (:func:`image_key`); anything else left out."""
    if not isinstance(raw, dict):
        return {}
    place: dict[str, str | int] = {}
    for key in ("model", "layer", "cmap"):
        value = raw.get(key)
        if isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS:
            place[key] = value
    image = image_key(raw.get("image"))
    if image is not None:
        place["image"] = image
    return place


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
