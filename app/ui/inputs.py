"""Checks for callback inputs: a callback's arguments are JSON from the browser, which a forged request can fill
with anything (a list where a name belongs, ``"１"`` where a number belongs, a 20,000-character string).

Each check returns the value in the type the callback uses or raises :class:`~app.core.errors.InvalidInput` with
a short sentence naming the field, which :func:`app.ui.page.reports_errors` shows in the page's message area.
Callbacks without a message area use the ``*_or_none`` forms and answer with no update.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from app.core.errors import InvalidInput
from app.core.parsing import parse_float, parse_int

# Model, layer and class names are short (model names at most 64 characters); a longer "name" is not one.
MAX_NAME_CHARS = 200
# Free-text fields (an image list, a training form's list of filters): generous for a person, small for a forgery.
MAX_TEXT_CHARS = 1000
_JOB_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
# JSON can carry "\ud800" (an unpaired surrogate): a Python str, but not text: it cannot be written as UTF-8 (a URL,
# a file name, a database key).
_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(raw: Any, limit: int = 40) -> str:
    """``repr(raw)`` cut to ``limit`` characters: a message must stay short whatever was sent."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def text(raw: Any, field: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``raw`` if it is a string of at most ``max_chars`` characters of Unicode text.

    Raises:
        InvalidInput: not a string, too long, or holding an unpaired surrogate.
    """
    if not isinstance(raw, str):
        raise InvalidInput(f"{field} must be text, got {shown(raw)}")
    if len(raw) > max_chars:
        raise InvalidInput(f"{field} is too long ({len(raw):,} characters; at most {max_chars:,})")
    if _SURROGATE.search(raw):
        raise InvalidInput(f"{field} is not Unicode text: {shown(raw)}")
    return raw


def name(raw: Any, field: str) -> str:
    """A model or layer name: a non-empty string of at most :data:`MAX_NAME_CHARS` characters."""
    value = text(raw, field, MAX_NAME_CHARS)
    if not value:
        raise InvalidInput(f"choose a {field}")
    return value


def name_or_none(raw: Any) -> str | None:
    """``raw`` if :func:`name` accepts it, else None (for callbacks without a message area)."""
    try:
        return name(raw, "name")
    except InvalidInput:
        return None


def integer(raw: Any, field: str, low: int | None = None, high: int | None = None) -> int:
    """An integer from a number input or a dropdown: an ``int`` (not ``bool``), a float with an integral value
    (number inputs may send ``3.0``), or a string of ASCII digits; ``"１"``, ``"1_0"`` and ``1.5`` are refused.

    Raises:
        InvalidInput: naming ``field`` and the valid range.
    """
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e18:
        raw = int(raw)
    return parse_int(raw, field, low, high)


def integer_or_none(raw: Any, low: int | None = None, high: int | None = None) -> int | None:
    """``raw`` as :func:`integer` accepts it, else None."""
    try:
        return integer(raw, "value", low, high)
    except InvalidInput:
        return None


def optional_integer(raw: Any, field: str, low: int | None = None, high: int | None = None) -> int | None:
    """None for an empty choice (None), else :func:`integer`."""
    return None if raw is None else integer(raw, field, low, high)


def number(raw: Any, field: str) -> float:
    """A finite number from a number input or a slider: an ``int`` or ``float`` from JSON (not ``bool``, and not
    text, which no such input sends), read by :func:`app.core.parsing.parse_float`, so integers too large for a
    float are refused.

    Raises:
        InvalidInput: not a number, or not finite as a float.
    """
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidInput(f"{field} must be a number, got {shown(raw)}")
    return parse_float(raw, field)


def choice(raw: Any, field: str, allowed: Collection[str]) -> str:
    """``raw`` if it is one of the strings ``allowed``.

    Raises:
        InvalidInput: listing the allowed values.
    """
    if not isinstance(raw, str) or raw not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}, got {shown(raw)}")
    return raw


def flag(raw: Any) -> bool:
    """A switch's value: True only for ``True`` (a forged ``"false"`` or ``{}`` is not "on")."""
    return raw is True


def job_id_or_none(raw: Any) -> str | None:
    """``raw`` if it looks like a job id (letters, digits, ``-``, ``_``; at most 64), else None."""
    return raw if isinstance(raw, str) and _JOB_ID.fullmatch(raw) else None


def job_view(raw: Any) -> dict | None:
    """``{"job", "total"}`` of the training page's view signature if it names a job, else None (a missing or
    malformed total becomes 0: unknown)."""
    if not isinstance(raw, dict) or job_id_or_none(raw.get("job")) is None:
        return None
    return {"job": raw["job"], "total": integer_or_none(raw.get("total"), 0, 10**6) or 0}
