"""Links to views and the parsing of their parameters."""

from app.ui.links import compare_link, explorer_link, job_link, parse_flag, parse_int, query_string


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
