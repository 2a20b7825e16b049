"""Strict parsing of outside values: text (a query string, a form field, a JSON document) into a value, one
contract per kind of value.

Pure functions, no Dash or Flask, no files. Each parser returns the value or raises
:class:`~app.core.errors.InvalidInput` with a short sentence naming the value; a caller that has a default for a
malformed value (a link's reader, :mod:`app.views.query`) catches it in one place.

- :func:`parse_int`: integers, ASCII digits only, range-checked.
- :func:`parse_float`: finite decimal numbers, ASCII only (no ``nan``, ``inf`` or ``1_0``).
- :func:`loads_json`: JSON with a size and nesting bound checked *before* parsing, and RFC 8259 numbers only (no
  ``NaN``/``Infinity``); :func:`json_safe` makes our own responses RFC 8259 too.
- :func:`shown`: a value quoted short enough for any message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

import numpy as np

from app.core.errors import InvalidInput

# 18 digits stay below 2**63 (9.2e18), so every accepted value fits the int64 of numpy, SQLite and TensorFlow.
MAX_INT_DIGITS = 18
MAX_INT = 10**MAX_INT_DIGITS - 1
# re's [0-9] is ASCII only, unlike \d or int(), which accept "１" (full-width) and "1_0"; fullmatch, not $, so a
# trailing newline is refused too.
_INT_TEXT = re.compile(rf"[+-]?[0-9]{{1,{MAX_INT_DIGITS}}}")

# What a decimal number looks like: ASCII only (re's [0-9]), no "nan" or "inf", an exponent of at most 3 digits (a
# float's range ends at 1.8e308); at most MAX_DECIMAL_CHARS characters, which any float's shortest exact text
# (0.011451901603914296, -2.2250738585072014e-308) fits.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
MAX_DECIMAL_CHARS = 32

# Our documents (meta.json, a training config) nest 4 levels; Python's json recurses once per level and raises
# RecursionError near 1,000, which is why the depth is checked on the text before json.loads sees it.
MAX_JSON_DEPTH = 32
# A meta.json with 500 epochs of history is ~60 kB; a training config well under 10 kB.
MAX_JSON_BYTES = 1_000_000

# A JSON string (escapes honoured, linear: no nested quantifier can backtrack), or an unterminated string, which
# swallows the rest of the text: json.loads then reports it as malformed.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"[\s\S]*')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(raw: Any, limit: int = 40) -> str:
    """``repr(raw)`` cut to ``limit`` characters: error messages must stay short whatever the input was.

    Containers show their type only (their repr could be megabytes), and so does an int too long to print.
    """
    if not isinstance(raw, int | float | str | bytes | type(None)):
        return type(raw).__name__
    try:
        text = repr(raw)
    except ValueError:  # an int beyond Python's 4,300-digit printing limit
        return "a very long number"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" between {low} and {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def parse_int(raw: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """Parse an integer parameter strictly.

    Accepted: a Python ``int`` (not ``bool``), or a ``str`` of an optional sign and 1-18 ASCII digits. Refused:
    full-width or other Unicode digits, ``1_0``, surrounding spaces, ``1.0``, ``""``, and any value beyond
    ±(10**18 - 1), so ``9223372036854775808`` never reaches int64 code.

    Args:
        raw: the value as received (query-string text or a decoded JSON value).
        name: the parameter's name, used in the error message.
        low, high: inclusive bounds; None leaves that side open.

    Returns:
        The integer.

    Raises:
        InvalidInput: a sentence naming the parameter and the valid range.
    """
    expected = f"{name} must be an integer{_range_text(low, high)}"
    if isinstance(raw, bool):
        raise InvalidInput(f"{expected}, got {shown(raw)}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _INT_TEXT.fullmatch(raw):
        value = int(raw)
    else:
        raise InvalidInput(f"{expected}, got {shown(raw)}")
    if abs(value) > MAX_INT or (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{expected}, got {shown(value)}")
    return value


def parse_float(raw: Any, name: str) -> float:
    """Parse a decimal number parameter strictly; the number must be finite.

    Accepted: a Python ``int`` or ``float`` (not ``bool``), or a ``str`` of ASCII decimal (an optional sign,
    digits with an optional point, an optional exponent of up to 3 digits: ``0.5``, ``.25``, ``-1e-3``) of at
    most :data:`MAX_DECIMAL_CHARS` characters. Refused: ``nan``, ``inf``, full-width digits and ``0_5`` (all of
    which Python's ``float()`` takes), numbers beyond a float's range (``1e999``, an int of 400 digits), ``0x1``,
    surrounding spaces and ``""``.

    Args:
        raw: the value as received (query-string text or a decoded JSON value).
        name: the parameter's name, used in the error message.

    Returns:
        The number, as a float.

    Raises:
        InvalidInput: a sentence naming the parameter.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InvalidInput(f"{name} must be a number, got {shown(raw)}")
    if isinstance(raw, str) and len(raw) > MAX_DECIMAL_CHARS:
        raise InvalidInput(f"{name} must be a number of at most {MAX_DECIMAL_CHARS} characters, got {shown(raw)}")
    if isinstance(raw, str) and not DECIMAL.fullmatch(raw):
        raise InvalidInput(f"{name} must be a number, got {shown(raw)}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise InvalidInput(f"{name} must be a finite number, got {shown(raw)}")
    try:
        value = float(raw)
    except OverflowError:  # an int beyond a float's range
        value = math.inf
    if not math.isfinite(value):  # 1e999 is decimal syntax but overflows to inf
        raise InvalidInput(f"{name} is too large for a float, got {shown(raw)}")
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidInput(f"JSON does not allow {name} (RFC 8259): send null or a finite number")


def _finite_float(text: str) -> float:
    """json.loads's reader of numbers with a point or an exponent: the one decimal parser, so ``1e999`` (valid JSON
    syntax, but inf as a float) is refused."""
    return parse_float(text, "the JSON number")


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text, ignoring brackets inside strings.

    Linear time and no recursion: strings are removed by one regular expression, then the brackets left are
    counted with a cumulative sum.

    Args:
        text: JSON text (need not be valid: malformed text gives some depth and json.loads rejects it later).

    Returns:
        The maximal depth (0 for a scalar).
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _has_lone_surrogate(value: Any) -> bool:
    """True if a decoded JSON value holds a string with an unpaired ``\\ud800``-style escape (not valid Unicode)."""
    stack = [value]
    while stack:  # iterative: the value is depth-bounded already, but a walk should never depend on that
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_json(data: str | bytes, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Decode JSON from an untrusted source, refusing what could exhaust memory or the stack.

    Checks, in order: size (bytes for ``bytes``, characters for an already decoded ``str``), UTF-8, nesting depth
    (on the text, before parsing), then parsing with RFC 8259 numbers only: ``NaN``, ``Infinity``, ``-Infinity``
    and numbers that overflow a float are refused (decimals are read by :func:`parse_float`, so one with more
    than :data:`MAX_DECIMAL_CHARS` characters is too), as are strings with unpaired surrogate escapes (they cannot
    be written back as UTF-8).

    Args:
        data: the document.
        max_depth: deepest allowed nesting of arrays and objects.
        max_bytes: largest allowed document.

    Returns:
        The decoded value.

    Raises:
        InvalidInput: saying which check failed.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > max_bytes:
            raise InvalidInput(f"the JSON document has {len(data):,} bytes; the limit is {max_bytes:,}")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the JSON document is not UTF-8 (byte {exc.start})") from exc
    elif isinstance(data, str):
        if len(data) > max_bytes:
            raise InvalidInput(f"the JSON document has {len(data):,} characters; the limit is {max_bytes:,}")
        if _SURROGATE.search(data):  # a str can hold them (surrogateescape); they cannot be written back as UTF-8
            raise InvalidInput("the JSON document holds an unpaired surrogate (not Unicode text)")
        text = data
    else:
        raise InvalidInput(f"a JSON document must be text or bytes, got {type(data).__name__}")
    depth = json_depth(text)
    if depth > max_depth:
        raise InvalidInput(f"the JSON document nests {depth} levels deep; the limit is {max_depth}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidInput:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digits limit; RecursionError as a backstop
        raise InvalidInput(f"invalid JSON: {str(exc)[:200]}") from exc
    if "\\u" in text and _has_lone_surrogate(value):
        raise InvalidInput("the JSON document holds a string with an unpaired surrogate escape (not Unicode text)")
    return value


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None and numpy values turned into Python ones.

    ``json.dumps`` writes NaN as a bare ``NaN``, which is not JSON (RFC 8259) and breaks ``JSON.parse`` in the
    browser; a test set with NaN pixels or a diverged loss would produce it.

    Args:
        value: dicts, lists, tuples, floats, numpy scalars and arrays, nested (as our responses are, a few levels).

    Returns:
        The same structure with lists for tuples and arrays, None for NaN and ±inf.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            as_objects = value.astype(object)
            as_objects[~np.isfinite(value)] = None
            return as_objects.tolist()
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, dict):
        return {json_safe(key) if isinstance(key, np.generic) else key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
