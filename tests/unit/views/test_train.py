"""The training page's view round-trips through its link, and any query gives a view and notices."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from app.views.train import TrainView

job_ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=64)
images = st.integers(0, 10**9) | st.text("0123456789abcdef", min_size=20, max_size=20).map(lambda h: "u:" + h)



@given(st.builds(TrainView, job=st.none() | job_ids, probe=st.none() | images))
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    assert TrainView.from_query(query) == (view, [])


@given(st.dictionaries(st.sampled_from(["job", "probe", "basket", "other"]),
                       st.one_of(st.text(max_size=70), st.lists(st.text(max_size=10), max_size=3))))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = TrainView.from_query(query)
    assert view.job is None or 0 < len(view.job) <= 64
    assert view.probe is None or isinstance(view.probe, str) and view.probe.startswith("u:") or view.probe >= 0
    assert all(notice.endswith(".") for notice in notices)


def test_a_forged_job_or_probe_is_left_out():
    assert TrainView.from_query({"job": "../etc", "probe": "u:zz"}) == (TrainView(), [
        "The link's job is not a job id; showing the current job.",
        "Image 'u:zz' is not an image id; the form watches image 0."])
