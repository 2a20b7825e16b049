"""The Classes page's view round-trips through its link, and any query gives a view and notices."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.grid import COLORMAPS
from app.views.classes import ClassesView

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
views = st.builds(
    ClassesView,
    model=st.none() | names, layer=st.none() | names, a=st.integers(0, 10**4), b=st.integers(0, 10**4),
    cmap=st.sampled_from(COLORMAPS), mlp=st.none() | names, image=st.none() | st.integers(0, 10**9),
    unit=st.none() | st.integers(0, 10**6),
)


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    assert ClassesView.from_query(query) == (view, [])


@given(st.dictionaries(st.sampled_from([*ClassesView.keys(), "other"]),
                       st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3))))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = ClassesView.from_query(query)
    assert min(view.a, view.b, view.image or 0) >= 0 and view.cmap in COLORMAPS
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_the_blogs_pair_by_default_and_what_a_malformed_class_falls_back_to():
    assert ClassesView.from_query({}) == (ClassesView(a=4, b=9), [])
    view, notices = ClassesView.from_query({"a": "x", "b": "3", "image": "１"})
    assert (view.a, view.b, view.image) == (4, 3, None)
    assert notices == ["Class 'x' is not a whole number of 0 or more; comparing class 4.",
                       "Image '１' is not a whole number of 0 or more; showing 0."]
