"""The readers of a link's values: lenient (a malformed value gives the default), strict about what counts as a
value (the parsers of app.core.parsing), the first of a repeated parameter; the compare basket and the place."""

from app.views.query import (
    MAX_COMPARE_IMAGES,
    clean_place,
    flag_value,
    fraction_range_value,
    image_key,
    number_value,
    parse_basket,
    text_value,
)


def test_numbers_and_flags():
    notices: list[str] = []
    assert number_value({"n": "12"}, "n", "N", notices) == 12 and notices == []
    assert number_value({"n": "x"}, "n", "N", notices, "showing 3") is None
    assert notices == ["N 'x' is not a whole number of 0 or more; showing 3."]
    assert number_value({}, "n", "N", notices) is None and len(notices) == 1
    assert flag_value({"f": "1"}, "f") and flag_value({"f": "true"}, "f")
    assert not flag_value({}, "f") and not flag_value({"f": "0"}, "f")


def test_numbers_are_strict_and_the_first_of_a_repeated_parameter_counts():
    for raw in ("１", "1_0", "٣", " 1", "1.0", "9" * 19, "-2"):
        notices: list[str] = []
        assert number_value({"n": raw}, "n", "N", notices) is None and len(notices) == 1
    for raw in (True, 3.0, None):  # not text: no link holds it, nothing to point out
        assert number_value({"n": raw}, "n", "N", []) is None
    assert number_value({"n": ["3", "4"]}, "n", "N", []) == 3 and number_value({"n": []}, "n", "N", []) is None


def test_fractions_are_strict_and_finite():
    assert fraction_range_value({"c": "0.5,1"}, "c") == (0.5, 1.0)
    assert fraction_range_value({"c": ".25,1e-0"}, "c") == (0.25, 1.0)
    assert fraction_range_value({"c": "1e-3,0.5"}, "c") == (0.001, 0.5)
    for raw in ("１", "0_5", "nan", "inf", "1e999", "", " 1", "0x1", "0." + "1" * 31):
        assert fraction_range_value({"c": f"{raw},1"}, "c") is None
    for raw in (None, ["x"], "0.5", "0.5,1,1", "0.9,0.1", "-0.5,1", "0,2"):
        assert fraction_range_value({"c": raw}, "c") is None


def test_text_and_flags_of_repeated_parameters():
    assert text_value({"k": ["a", "b"]}, "k") == "a" and text_value({"k": "a"}, "k") == "a"
    assert text_value({"k": []}, "k") is None and text_value({"k": 3}, "k") is None and text_value({}, "k") is None
    assert flag_value({"f": ["1", "0"]}, "f") and not flag_value({"f": ["0", "1"]}, "f")
    assert not flag_value({"f": []}, "f")


def test_image_keys_are_test_image_numbers_or_user_image_ids():
    own = "u:0123456789abcdef0123"
    assert [image_key(raw) for raw in (0, "12", " 7 ", f" {own} ", 10**9 - 1)] == [0, 12, 7, own, 10**9 - 1]
    for raw in (-1, "-1", 10**9, True, 1.0, "１", "1_0", "u:xyz", None, [3], "x"):
        assert image_key(raw) is None


def test_basket_keeps_the_picked_order_without_repeats_up_to_the_limit():
    assert parse_basket("252,227,810") == [252, 227, 810]
    assert parse_basket([810, 252, 810, "x", True, -3, 1.5, "４", 227]) == [810, 252, 227]
    assert parse_basket(",".join(map(str, range(20)))) == list(range(MAX_COMPARE_IMAGES))
    assert parse_basket(None) == [] and parse_basket({"a": 1}) == [] and parse_basket("") == []


def test_the_basket_and_the_place_take_the_users_own_images_by_their_ids():
    own = "u:0123456789abcdef0123"
    assert parse_basket(f"252,{own},u:xyz,{own},7") == [252, own, 7]
    assert parse_basket([own, 3, "u:" + "A" * 20, "u:" + "a" * 21]) == [own, 3]
    assert clean_place({"model": "m", "image": own}) == {"model": "m", "image": own}
    assert clean_place({"image": "u:../../etc"}) == {}


def test_the_place_keeps_short_names_and_an_image():
    place = clean_place({"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": "252", "x": 1})
    assert place == {"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": 252}
    assert clean_place({"model": ["x"], "image": True, "cmap": "x" * 500}) == {}
    assert clean_place({"model": "", "layer": None}) == {} and clean_place("model=m") == {}
