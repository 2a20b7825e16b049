"""The finder's view round-trips through its link, and any query gives a view and notices."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.finder import CORRECTNESS, SORT_ORDERS
from app.views.finder import FinderView

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
fractions = st.floats(0, 1, allow_nan=False) | st.integers(0, 100).map(lambda percent: percent / 100)
views = st.builds(
    FinderView,
    model=st.none() | names, true=st.none() | st.integers(0, 10**4), predicted=st.none() | st.integers(0, 10**4),
    correct=st.sampled_from(CORRECTNESS), conf=st.tuples(fractions, fractions).map(lambda pair: tuple(sorted(pair))),
    sort=st.sampled_from(SORT_ORDERS), prob=st.none() | st.integers(0, 10**4), likeness_layer=st.none() | names,
).map(lambda view: view if view.sort == "likeness" else replace(view, likeness_layer=None))  # only that order uses it


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    assert FinderView.from_query(query) == (view, [])


@given(st.dictionaries(st.sampled_from([*FinderView.keys(), "other"]),
                       st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3),
                                 st.sampled_from(["0.2,0.9", "0.9,0.2", "nan,1", "1e3,1", "0.5,1_0", "-0,1"]))))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = FinderView.from_query(query)
    low, high = view.conf
    assert 0 <= low <= high <= 1 and view.correct in CORRECTNESS and view.sort in SORT_ORDERS
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_defaults_are_left_out_of_the_link():
    assert FinderView.from_query({}) == (FinderView(), [])
    assert FinderView(model="m").to_query() == "?model=m"
    assert FinderView(model="m", true=4, predicted=9, correct="wrong", conf=(0.2, 1.0)).to_query() == (
        "?model=m&true=4&predicted=9&correct=wrong&conf=0.2,1")


def test_the_likeness_layer_travels_only_with_its_order_and_never_as_the_places_layer():
    near = FinderView("mnist-cnn", true=4, sort="likeness", prob=9, likeness_layer="Dense_1")
    assert near.to_query() == "?model=mnist-cnn&true=4&sort=likeness&prob=9&likeness_layer=Dense_1"
    assert "likeness_layer" not in replace(near, sort="probability-desc").to_query()
