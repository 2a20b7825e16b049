"""The compare basket's rules (order, no repeats, the compare limit)."""

from app.ui.navigation import add_to_basket
from app.views.query import MAX_COMPARE_IMAGES


def test_add_to_basket_appends_in_order_and_reports_what_did_not_fit():
    assert add_to_basket([252], [227, 810, 252]) == ([252, 227, 810], [])
    full = list(range(MAX_COMPARE_IMAGES))
    assert add_to_basket(full, [3, 99]) == (full, [99])
    assert add_to_basket("junk", [5]) == ([5], [])


def test_the_basket_bar_shows_a_users_image_by_the_start_of_its_id():
    from app.ui.navigation import basket_bar

    own = "u:0123456789abcdef0123"
    assert add_to_basket([3], [own, own]) == ([3, own], [])
    listing, open_in_compare = basket_bar([3, own], {"model": "mnist-cnn"})
    summary, menu = listing.children
    assert summary.children == "Basket (2/8)"
    badge = menu.children[1].to_plotly_json()["props"]
    assert badge["children"][0] == "u:012345… " and badge["title"] == own
    assert open_in_compare.href == "/compare?model=mnist-cnn&images=3,u%3A0123456789abcdef0123&cmap=viridis"
