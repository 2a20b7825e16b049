"""The compare basket's rules (order, no repeats, the compare limit)."""

from app.ui.links import MAX_COMPARE_IMAGES
from app.ui.navigation import add_to_basket


def test_add_to_basket_appends_in_order_and_reports_what_did_not_fit():
    assert add_to_basket([252], [227, 810, 252]) == ([252, 227, 810], [])
    full = list(range(MAX_COMPARE_IMAGES))
    assert add_to_basket(full, [3, 99]) == (full, [99])
    assert add_to_basket("junk", [5]) == ([5], [])
