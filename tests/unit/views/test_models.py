"""The Models page's view round-trips through its link, and any query gives a view."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from app.views.models import ModelsView

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)


@given(st.builds(ModelsView, model=st.none() | names, added=st.booleans()))
@settings(max_examples=200, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    assert ModelsView.from_query(query) == (view, [])


@given(st.dictionaries(st.sampled_from(["model", "added", "other"]),
                       st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3))))
@settings(max_examples=200, derandomize=True)
def test_any_query_gives_a_view(query):
    view, notices = ModelsView.from_query(query)
    assert (view.model is None or 0 < len(view.model) <= 200) and notices == []


def test_the_upload_forms_return_link():
    assert ModelsView.from_query({"model": "mine", "added": "1"}) == (ModelsView("mine", True), [])
    assert ModelsView("mine").to_query() == "?model=mine"
