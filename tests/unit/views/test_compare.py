"""Compare's view round-trips through its link, and any query gives a view and notices, never an exception."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.attribution import METHODS
from app.core.grid import COLORMAPS
from app.views.compare import DEFAULT_IMAGES, CompareView

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
images = st.integers(0, 10**9) | st.text("0123456789abcdef", min_size=20, max_size=20).map(lambda h: "u:" + h)
views = st.builds(
    CompareView,
    model=st.none() | names,
    layer=st.none() | names,
    images=st.lists(images, min_size=1, max_size=8).map(lambda items: ",".join(map(str, items))),
    cmap=st.sampled_from(COLORMAPS),
    a=st.none() | images,
    b=st.none() | images,
    unit=st.none() | st.integers(0, 10**6),
    method=st.sampled_from(("", *METHODS)),
    target=st.none() | st.integers(0, 10**4),
)


def reopened(view: CompareView) -> tuple[CompareView, list[str]]:
    """The view a browser gets from ``view``'s link: the query as Dash hands it to ``layout(**query)``."""
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    return CompareView.from_query(query)


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    assert reopened(view) == (view, [])


@given(st.dictionaries(st.sampled_from([*CompareView.keys(), "other"]),
                       st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3))))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = CompareView.from_query(query)
    assert view.cmap in COLORMAPS and view.images
    for image in (view.a, view.b):
        assert image is None or isinstance(image, str) and image.startswith("u:") or image >= 0
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_defaults_and_fallbacks():
    assert CompareView.from_query({}) == (CompareView(), [])
    view, notices = CompareView.from_query({"images": "", "a": "x", "b": "u:zz", "unit": "-3"})
    assert view == CompareView(images=DEFAULT_IMAGES)
    assert notices == ["Image 'x' is not a whole number; the first image is A.",
                       "Image 'u:zz' is not an image id; the second image is B.",
                       "Unit '-3' is not a whole number of 0 or more; no unit chosen."]
    assert CompareView(model="m", images="3,12", a=3, b=12).to_query() == "?model=m&images=3,12&cmap=viridis&a=3&b=12"
