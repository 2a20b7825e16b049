"""Links to views and the parsing of their parameters."""

from app.ui.links import compare_link, explorer_link, first, job_link, parse_flag, parse_float, parse_int, query_string


def test_query_string_keeps_zero_and_drops_empty():
    assert query_string({"image": 0, "a": None, "scale": False, "reverse": True, "cmap": ""}) == "?image=0&reverse=1"
    assert query_string({}) == ""


def test_links_keep_commas_readable_and_image_zero():
    # written by the pages' views: the colormap (and image 0) are spelled out, so the link reopens exactly the view
    assert explorer_link("mnist-cnn", "Conv2D_3", 0) == "/?model=mnist-cnn&layer=Conv2D_3&image=0&cmap=viridis"
    assert explorer_link("m") == "/?model=m&image=0&cmap=viridis"
    assert compare_link("m", [12, 7, 300], "Dense_1") == "/compare?model=m&layer=Dense_1&images=12,7,300&cmap=viridis"
    assert compare_link("m", []) == "/compare?model=m&images=0,1,2&cmap=viridis"  # Compare's default images
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


def test_basket_keeps_the_picked_order_without_repeats_up_to_the_limit():
    from app.ui.links import MAX_COMPARE_IMAGES, parse_basket

    assert parse_basket("252,227,810") == [252, 227, 810]
    assert parse_basket([810, 252, 810, "x", True, -3, 1.5, "４", 227]) == [810, 252, 227]
    assert parse_basket(",".join(map(str, range(20)))) == list(range(MAX_COMPARE_IMAGES))
    assert parse_basket(None) == [] and parse_basket({"a": 1}) == [] and parse_basket("") == []


def test_place_links_carry_model_layer_colormap_image_and_basket():
    from app.ui.links import clean_place, place_links

    place = clean_place({"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": "252", "x": 1})
    assert place == {"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": 252}
    links = place_links(place, [])
    assert links["/"] == "/?model=mnist-cnn&layer=Conv2D_3&image=252&cmap=jet"
    assert links["/compare"] == "/compare?model=mnist-cnn&layer=Conv2D_3&images=252&cmap=jet"
    links = place_links(place, [7, 252, 9])
    assert links["/compare"] == "/compare?model=mnist-cnn&layer=Conv2D_3&images=7,252,9&cmap=jet&basket=7,252,9"
    assert place_links({"image": 1}, [2])["/compare"] == "/compare?images=1,2&basket=2"
    assert links["/finder"] == "/finder?model=mnist-cnn&basket=7,252,9" and links["/train"] == "/train?basket=7,252,9"
    assert clean_place({"model": ["x"], "image": True, "cmap": "x" * 500}) == {}


def test_with_unit_appends_the_chosen_unit_to_a_view():
    from app.ui.links import with_unit

    assert with_unit("?model=m&image=0", 5) == "?model=m&image=0&unit=5"
    assert with_unit("?model=m", 0) == "?model=m&unit=0"
    assert with_unit("", 3) == "?unit=3"
    assert with_unit("?model=m", None) == "?model=m"
    assert [with_unit(bad, 1) for bad in (None, 3, ["?a"], "model=m", "?" + "x" * 3000)] == [None] * 5


def test_the_basket_and_compare_links_carry_the_users_own_images_by_their_ids():
    from app.ui.links import clean_place, compare_link, parse_basket, place_links

    own = "u:0123456789abcdef0123"
    assert parse_basket(f"252,{own},u:xyz,{own},7") == [252, own, 7]
    assert parse_basket([own, 3, "u:" + "A" * 20, "u:" + "a" * 21]) == [own, 3]
    assert compare_link("m", [3, own, 17]) == "/compare?model=m&images=3,u%3A0123456789abcdef0123,17&cmap=viridis"
    place = clean_place({"model": "m", "image": own})
    assert place == {"model": "m", "image": own}
    links = place_links(place, [4])
    assert links["/compare"] == "/compare?model=m&images=u%3A0123456789abcdef0123,4&basket=4"
    assert links["/"] == "/?model=m&image=u%3A0123456789abcdef0123&basket=4"
    assert links["/classes"] == "/classes?model=m&basket=4"  # the MLP view takes test images only
    assert clean_place({"image": "u:../../etc"}) == {}
