"""Links to views, each written by its page's View."""

from urllib.parse import parse_qs, urlsplit

import pytest

from app.ui.links import compare_link, explorer_link, job_link, place_links, query_string, why_link
from app.views.classes import ClassesView
from app.views.compare import CompareView
from app.views.explore import ExploreView
from app.views.features import FeaturesView
from app.views.finder import FinderView
from app.views.query import clean_place
from app.views.train import TrainView
from app.views.why import WhyView


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
    assert why_link("m", 12) == "/why?model=m&image=12"  # the predicted class against the runner-up
    assert why_link("m", 0, "Dense_1", 4, 9) == "/why?model=m&layer=Dense_1&image=0&a=4&b=9"
    assert why_link("m", "u:0123456789abcdef0123") == "/why?model=m&image=u%3A0123456789abcdef0123"


def test_place_links_carry_model_layer_colormap_image_and_never_the_basket():
    place = clean_place({"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": "252", "x": 1})
    assert place == {"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": 252}
    links = place_links(place, [])
    assert links["/"] == "/?model=mnist-cnn&layer=Conv2D_3&image=252&cmap=jet"
    assert links["/compare"] == "/compare?model=mnist-cnn&layer=Conv2D_3&images=252&cmap=jet"
    links = place_links(place, [7, 252, 9])
    assert links["/compare"] == "/compare?model=mnist-cnn&layer=Conv2D_3&images=7,252,9&cmap=jet"
    assert place_links({"image": 1}, [2])["/compare"] == "/compare?images=1,2"
    assert links["/finder"] == "/finder?model=mnist-cnn" and links["/train"] == "/train"
    assert all("basket" not in href for href in links.values())
    assert clean_place({"model": ["x"], "image": True, "cmap": "x" * 500}) == {}


def test_the_compare_links_carry_the_users_own_images_by_their_ids():
    own = "u:0123456789abcdef0123"
    assert compare_link("m", [3, own, 17]) == "/compare?model=m&images=3,u%3A0123456789abcdef0123,17&cmap=viridis"
    links = place_links(clean_place({"model": "m", "image": own}), [4])
    assert links["/compare"] == "/compare?model=m&images=u%3A0123456789abcdef0123,4"
    assert links["/"] == "/?model=m&image=u%3A0123456789abcdef0123"
    assert links["/classes"] == "/classes?model=m"  # its link to "Why this prediction?" names test images
    assert links["/features"] == "/features?model=m&image=0&method=gradient"  # attribution explains test images
    assert links["/why"] == "/why?model=m&image=u%3A0123456789abcdef0123"


OWN = "u:0123456789abcdef0123"
OWN_QUOTED = "u%3A0123456789abcdef0123"
MODEL_QUOTED = "a+b%26c,d%2F%C3%A9"
# The navigation bar's links, each written by its page's View (a copied or bookmarked link reopens the same view).
PLACE_LINKS = [
    ({}, [], {"/": "/", "/compare": "/compare", "/finder": "/finder", "/classes": "/classes",
              "/features": "/features?image=0&method=gradient", "/train": "/train"}),
    ({"cmap": "viridis"}, [], {"/": "/?cmap=viridis", "/compare": "/compare?cmap=viridis", "/finder": "/finder",
                               "/classes": "/classes?cmap=viridis", "/features": "/features?image=0&method=gradient",
                               "/train": "/train"}),
    ({"model": "mnist-cnn", "layer": "Conv2D_3", "cmap": "jet", "image": 252}, [7, 252, 9], {
        "/": "/?model=mnist-cnn&layer=Conv2D_3&image=252&cmap=jet",
        "/compare": "/compare?model=mnist-cnn&layer=Conv2D_3&images=7,252,9&cmap=jet",
        "/finder": "/finder?model=mnist-cnn",
        "/classes": "/classes?model=mnist-cnn&layer=Conv2D_3&cmap=jet&image=252",
        "/features": "/features?model=mnist-cnn&layer=Conv2D_3&image=252&method=gradient",
        "/train": "/train"}),
    ({"image": 1}, [2], {"/": "/?image=1", "/compare": "/compare?images=1,2", "/finder": "/finder",
                         "/classes": "/classes?image=1", "/features": "/features?image=1&method=gradient",
                         "/train": "/train"}),
    ({"model": "m", "layer": "L"}, [OWN, 3], {
        "/": "/?model=m&layer=L",
        "/compare": f"/compare?model=m&layer=L&images={OWN_QUOTED},3",
        "/finder": "/finder?model=m",
        "/classes": "/classes?model=m&layer=L",
        "/features": "/features?model=m&layer=L&image=0&method=gradient",
        "/train": "/train"}),
    ({"model": "a b&c,d/é", "layer": "outer/inner", "cmap": "magma", "image": 0}, list(range(8)), {
        "/": f"/?model={MODEL_QUOTED}&layer=outer%2Finner&image=0&cmap=magma",
        "/compare": f"/compare?model={MODEL_QUOTED}&layer=outer%2Finner&images=0,1,2,3,4,5,6,7&cmap=magma",
        "/finder": f"/finder?model={MODEL_QUOTED}",
        "/classes": f"/classes?model={MODEL_QUOTED}&layer=outer%2Finner&cmap=magma&image=0",
        "/features": f"/features?model={MODEL_QUOTED}&layer=outer%2Finner&image=0&method=gradient",
        "/train": "/train"}),
    ({"model": "m", "image": 9}, list(range(1, 9)), {
        "/": "/?model=m&image=9",
        "/compare": "/compare?model=m&images=9,1,2,3,4,5,6,7",  # Compare shows 8 at most
        "/finder": "/finder?model=m",
        "/classes": "/classes?model=m&image=9",
        "/features": "/features?model=m&image=9&method=gradient",
        "/train": "/train"}),
]


@pytest.mark.parametrize(("place", "basket", "expected"), PLACE_LINKS)
def test_place_links_are_the_links_the_navigation_bar_has_always_written(place, basket, expected):
    links = place_links(place, basket)
    assert {path: href for path, href in links.items() if path != "/why"} == expected
    # "Why this prediction?" (newer) keeps the model and the image, not the place's layer (a conv layer, often)
    assert links["/why"] == "/why" + WhyView(place.get("model"), None, place.get("image")).to_query()


VIEW_OF_PAGE = {"/": ExploreView, "/compare": CompareView, "/finder": FinderView, "/classes": ClassesView,
                "/features": FeaturesView, "/train": TrainView, "/why": WhyView}


@pytest.mark.parametrize(("place", "basket", "expected"), PLACE_LINKS)
def test_each_place_link_reopens_its_page_at_the_place(place, basket, expected):
    for path, href in place_links(place, basket).items():
        view, notices = VIEW_OF_PAGE[path].from_query(parse_qs(urlsplit(href).query))
        assert notices == []
        for key in ("model", "layer", "cmap"):
            if key in place and hasattr(view, key) and (path, key) != ("/why", "layer"):
                assert getattr(view, key) == place[key]
        takes_own_images = path in ("/", "/why")
        if "image" in place and path in ("/", "/why", "/classes", "/features") and (
                takes_own_images or isinstance(place["image"], int)):
            assert view.image == place["image"]
