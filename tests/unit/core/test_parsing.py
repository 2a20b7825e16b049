"""Strict parsing: integers and decimals from text, bounded JSON in, RFC 8259 JSON out."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidInput
from app.core.parsing import (
    MAX_DECIMAL_CHARS,
    MAX_JSON_DEPTH,
    json_depth,
    json_safe,
    loads_json,
    parse_float,
    parse_int,
)

# Fixed examples (derandomize), no example database written into the checkout, no timing flakiness on a busy CI.
PROPERTY = settings(derandomize=True, max_examples=200, deadline=None, database=None)

# ---------------------------------------------------------------- parse_int


@pytest.mark.parametrize(
    ("raw", "expected"), [(0, 0), (7, 7), ("7", 7), ("-3", -3), ("+12", 12), ("007", 7), (10**18 - 1, 10**18 - 1)]
)
def test_parse_int_accepts_plain_integers(raw, expected):
    assert parse_int(raw, "image") == expected


@pytest.mark.parametrize(
    "raw",
    ["１", "1_0", " 1", "1 ", "1\n", "1.0", "", "+", "0x10", "1e3", "٣", "9223372036854775808", "1" * 19, 1.0, True,
     None, [1], np.int64(3)],
)
def test_parse_int_refuses_everything_else(raw):
    with pytest.raises(InvalidInput, match="^epoch must be an integer"):
        parse_int(raw, "epoch")


def test_parse_int_refuses_python_ints_beyond_int64_digits():
    with pytest.raises(InvalidInput):
        parse_int(9223372036854775808, "epoch")


def test_parse_int_message_names_the_range_it_has():
    with pytest.raises(InvalidInput, match=r"^epoch must be an integer between 1 and 20, got 21$"):
        parse_int("21", "epoch", 1, 20)
    with pytest.raises(InvalidInput, match=r"^image must be an integer of at least 0, got -1$"):
        parse_int(-1, "image", low=0)
    with pytest.raises(InvalidInput, match=r"^n must be an integer of at most 5, got 6$"):
        parse_int("6", "n", high=5)
    with pytest.raises(InvalidInput) as info:
        parse_int("x" * 5000, "n", 1, 2)
    assert "None" not in str(info.value) and len(str(info.value)) < 100


@PROPERTY
@given(st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.floats(), st.none()),
       st.one_of(st.none(), st.integers(-100, 100)), st.one_of(st.none(), st.integers(-100, 100)))
def test_parse_int_returns_a_bounded_int_or_refuses(raw, low, high):
    try:
        value = parse_int(raw, "n", low, high)
    except InvalidInput as exc:
        assert str(exc).startswith("n must be an integer") and "and None" not in str(exc)
        return
    assert type(value) is int and abs(value) < 10**18
    assert (low is None or value >= low) and (high is None or value <= high)
    assert isinstance(raw, int) or (raw.isascii() and raw.strip() == raw)


@PROPERTY
@given(st.integers(-(10**18) + 1, 10**18 - 1))
def test_parse_int_round_trips_its_own_text(value):
    assert parse_int(str(value), "n") == value


# ---------------------------------------------------------------- parse_float


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.5", 0.5), (".25", 0.25), ("1e-3", 0.001), ("-2", -2.0), ("+1.", 1.0), ("1E308", 1e308), (3, 3.0),
     (0.125, 0.125), (-0.0, -0.0), ("0.011451901603914296", 0.011451901603914296)],
)
def test_parse_float_accepts_plain_decimals(raw, expected):
    value = parse_float(raw, "noise")
    assert value == expected and type(value) is float


@pytest.mark.parametrize(
    "raw",
    ["１", "0_5", "nan", "NaN", "inf", "-Infinity", "", " 1", "1 ", "1\n", "0x1", ".", "e3", "1e", "1e1000", "٣",
     "1" * (MAX_DECIMAL_CHARS + 1), True, None, [0.5]],
)
def test_parse_float_refuses_everything_else(raw):
    with pytest.raises(InvalidInput, match="^noise must be a number"):
        parse_float(raw, "noise")


@pytest.mark.parametrize("raw", ["1e999", "-1e400", 10**400, float("inf"), float("nan")])
def test_parse_float_refuses_what_is_not_finite(raw):
    with pytest.raises(InvalidInput, match="^noise (is too large for a float|must be a finite number)"):
        parse_float(raw, "noise")


@PROPERTY
@given(st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.booleans(), st.none()))
def test_parse_float_returns_a_finite_float_or_refuses(raw):
    try:
        value = parse_float(raw, "x")
    except InvalidInput as exc:
        assert str(exc).startswith("x ") and len(str(exc)) < 120
        return
    assert type(value) is float and math.isfinite(value)
    assert not isinstance(raw, str) or (raw.isascii() and raw.strip() == raw and len(raw) <= MAX_DECIMAL_CHARS)


@PROPERTY
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_float_round_trips_its_own_text(value):
    assert parse_float(repr(value), "x") == value


# ---------------------------------------------------------------- JSON in


def test_loads_json_reads_ordinary_documents():
    assert loads_json('{"a": [1, 2.5, "x]{", null, true], "b": {"c": "\\"["}}') == {
        "a": [1, 2.5, "x]{", None, True], "b": {"c": '"['}
    }
    assert loads_json(b'[1e308, -0.0, "\\ud83d\\ude00"]') == [1e308, -0.0, "😀"]


def test_depth_ignores_brackets_inside_strings_and_escapes():
    assert json_depth('"[[[["') == 0
    assert json_depth('[["\\"[[[", {"k": []}]]') == 4
    assert json_depth('{"a": "\\\\"}') == 1  # an escaped backslash ends before the quote: the string closes
    assert json_depth('["unterminated [[[[') == 1


def test_deep_nesting_is_refused_before_parsing_and_fast():
    started = time.perf_counter()
    for text in ("[" * 200_000 + "]" * 200_000, '{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 999_999):
        with pytest.raises(InvalidInput, match="nests .* levels deep; the limit is 32"):
            loads_json(text)
    assert time.perf_counter() - started < 2


def test_json_recursion_beyond_a_raised_depth_limit_is_still_invalid_input():
    deep = "[" * 50_000 + "]" * 50_000  # json.loads itself would raise RecursionError on this
    with pytest.raises(InvalidInput, match="invalid JSON"):
        loads_json(deep, max_depth=100_000)
    nested = loads_json("[" * 100 + "]" * 100, max_depth=100)
    for _ in range(99):
        nested = nested[0]
    assert nested == []


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}', "[1e999]", "-1e400"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(InvalidInput, match="RFC 8259|too large for a float"):
        loads_json(text)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe[]", "[1,]", "", "{'a': 1}", b'["\xc3"]', '"\\ud800"', '{"\\udc00": 1}', '"\ud800"', "1" * 5000, 3,
     None],
)
def test_malformed_json_is_invalid_input(data):
    with pytest.raises(InvalidInput):
        loads_json(data)


def test_size_is_checked_first():
    with pytest.raises(InvalidInput, match="has 2,000,001 bytes; the limit is 1,000,000"):
        loads_json(b" " * 2_000_001)
    with pytest.raises(InvalidInput, match="characters"):
        loads_json(" " * 11, max_bytes=10)


@PROPERTY
@given(st.one_of(st.text(alphabet='[]{}":,0123456789.-eE\\ntrufalsNIiy \u00e9\ud800', max_size=60),
                 st.binary(max_size=60)))
def test_loads_json_returns_a_value_or_invalid_input(data):
    try:
        value = loads_json(data, max_depth=5)
    except InvalidInput:
        return
    json.dumps(value, allow_nan=False).encode("utf-8")  # whatever it returns can be sent back as RFC 8259 JSON


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(json_values)
def test_loads_json_round_trips_valid_documents(value):
    text = json.dumps(value)
    if json_depth(text) <= MAX_JSON_DEPTH:
        assert loads_json(text) == value
        assert loads_json(text.encode()) == value


# ---------------------------------------------------------------- JSON out


def test_json_safe_makes_rfc_8259_json():
    value = {
        "loss": float("nan"), "acc": np.float32(0.5), "n": np.int64(3), "ok": np.bool_(True),
        "grid": np.array([[1.0, np.inf], [-np.inf, np.nan]], dtype=np.float32), "ints": np.arange(3),
        "nested": ({"x": [float("inf"), 1.5]},), "s": "NaN", np.int64(4): np.float64(2.0),
    }
    safe = json_safe(value)
    assert safe == {
        "loss": None, "acc": 0.5, "n": 3, "ok": True, "grid": [[1.0, None], [None, None]], "ints": [0, 1, 2],
        "nested": [{"x": [None, 1.5]}], "s": "NaN", 4: 2.0,
    }
    assert loads_json(json.dumps(safe, allow_nan=False)) is not None
    assert type(safe["grid"][0][0]) is float and type(safe["n"]) is int
