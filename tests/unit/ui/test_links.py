"""Links to views and the parsing of their parameters."""

from app.ui.links import compare_link, explorer_link, first, job_link, parse_flag, parse_float, parse_int, query_string


def test_query_string_keeps_zero_and_drops_empty():
    assert query_string({"image": 0, "a": None, "scale": False, "reverse": True, "cmap": ""}) == "?image=0&reverse=1"
    assert query_string({}) == ""


def test_links_keep_commas_readable_and_image_zero():
    assert explorer_link("mnist-cnn", "Conv2D_3", 0) == "/?model=mnist-cnn&layer=Conv2D_3&image=0"
    assert explorer_link("m") == "/?model=m"
    assert compare_link("m", [12, 7, 300], "Dense_1") == "/compare?model=m&layer=Dense_1&images=12,7,300"
    assert job_link("abc123") == "/train?job=abc123"


def test_parse_int_and_flag():
    assert parse_int("12", 0) == 12 and parse_int("x", 3) == 3 and parse_int(None, None) is None
    assert parse_flag("1") and parse_flag("true") and not parse_flag(None) and not parse_flag("0")


def test_parse_int_is_strict_and_takes_the_first_of_a_repeated_parameter():
    for raw in ("１", "1_0", "٣", " 1", "1.0", "9" * 19, True, 3.0):
        assert parse_int(raw, -7) == -7
    assert parse_int(["3", "4"], 0) == 3 and parse_int([], 5) == 5 and parse_int("-2", 0) == -2


def test_parse_float_is_strict_and_finite():
    assert parse_float("0.5", None) == 0.5 and parse_float(".25", None) == 0.25 and parse_float("1e-3", None) == 0.001
    for raw in ("１", "0_5", "nan", "inf", "1e999", "", " 1", "0x1", "1" * 31, None, ["x"]):
        assert parse_float(raw, None) is None


def test_first_and_flags_of_repeated_parameters():
    assert first(["a", "b"]) == "a" and first("a") == "a" and first([]) is None and first(3) is None
    assert parse_flag(["1", "0"]) and not parse_flag(["0", "1"]) and not parse_flag([])
