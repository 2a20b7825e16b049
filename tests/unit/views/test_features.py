"""The Features page's view round-trips through its link, and any query gives a view and notices."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.attribution import METHODS
from app.views.features import FeaturesView

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
views = st.builds(
    FeaturesView, model=st.none() | names, layer=st.none() | names, image=st.integers(0, 10**9),
    method=st.sampled_from(METHODS), target=st.none() | st.integers(0, 10**4), cam=st.none() | names,
)


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    assert FeaturesView.from_query(query) == (view, [])


@given(st.dictionaries(st.sampled_from([*FeaturesView.keys(), "other"]),
                       st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3))))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = FeaturesView.from_query(query)
    assert view.image >= 0 and view.method in METHODS and (view.target is None or view.target >= 0)
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_defaults_and_fallbacks():
    assert FeaturesView.from_query({}) == (FeaturesView(), [])
    view, notices = FeaturesView.from_query({"method": "nope", "target": "-1", "image": "x"})
    assert view == FeaturesView()
    assert len(notices) == 2
