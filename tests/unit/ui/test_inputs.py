"""Checks of callback inputs: the value in the type the callback uses, or a short InvalidInput naming the field."""

import pytest

from app.core.errors import InvalidInput
from app.ui import inputs


@pytest.mark.parametrize(("raw", "expected"), [(3, 3), ("12", 12), (3.0, 3), (0, 0), ("-1", -1)])
def test_integer_accepts_ints_digit_strings_and_integral_floats(raw, expected):
    assert inputs.integer(raw, "the test image") == expected


@pytest.mark.parametrize("raw", ["１", "1_0", "٣", " 1", "1.5", 1.5, True, None, [1], {"0": 1}, 1e30, 10**30, "NaN"])
def test_integer_refuses_everything_else(raw):
    with pytest.raises(InvalidInput, match="^the test image must be an integer"):
        inputs.integer(raw, "the test image")
    assert inputs.integer_or_none(raw) is None


def test_integer_range_and_optional():
    with pytest.raises(InvalidInput, match="of at least 0"):
        inputs.integer(-1, "unit", 0)
    assert inputs.optional_integer(None, "class") is None and inputs.optional_integer(4, "class") == 4


def test_text_and_names():
    assert inputs.text("3, 12", "the image list") == "3, 12"
    for raw, message in [(["a"], "must be text"), ("x" * 1001, "too long"), ("a\ud800", "not Unicode text")]:
        with pytest.raises(InvalidInput, match=message):
            inputs.text(raw, "the image list")
    with pytest.raises(InvalidInput, match="choose a layer"):
        inputs.name("", "layer")
    assert inputs.name_or_none("Conv2D_1") == "Conv2D_1" and inputs.name_or_none({"a": 1}) is None
    assert inputs.name_or_none("x" * 201) is None


def test_number_is_finite_and_not_bool():
    assert inputs.number(1, "low") == 1.0 and inputs.number(0.25, "low") == 0.25
    for raw, message in [(True, "must be a number"), ("0.5", "must be a number"), (10**400, "too large"),
                         (None, "must be a number")]:
        with pytest.raises(InvalidInput, match=message):
            inputs.number(raw, "low")


def test_choice_flag_and_job_view():
    assert inputs.choice("jet", "the colormap", ("viridis", "jet")) == "jet"
    with pytest.raises(InvalidInput, match="one of viridis, jet, got \\['jet'\\]"):
        inputs.choice(["jet"], "the colormap", ("viridis", "jet"))
    assert inputs.flag(True) and not inputs.flag("true") and not inputs.flag({"a": 1})
    assert inputs.job_view({"job": "abc123", "total": 3, "epochs": 2}) == {"job": "abc123", "total": 3}
    assert inputs.job_view({"job": "abc123", "total": "x"}) == {"job": "abc123", "total": 0}
    for raw in (None, [], {"job": ["abc"]}, {"job": "../x"}, {"job": "a\ud800"}, {"total": 3}):
        assert inputs.job_view(raw) is None


def test_shown_cuts_long_values():
    assert inputs.shown("x" * 100) == repr("x" * 100)[:37] + "..." and inputs.shown("１") == "'１'"
