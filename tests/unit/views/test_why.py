"""The "Why this prediction?" view: it round-trips through its link, any query gives a view and notices (never an
exception), and what it shows adds up to the model's own logits and probabilities, for a test image and for the
user's own."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.activations import ImageOutOfRange
from app.core.errors import InvalidInput, NotFound
from app.core.store import ModelStore
from app.core.user_images import UserImageStore, add_array
from app.views.why import WhyView, top_two, why
from tests.conftest import layer_outputs

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
own_ids = st.text("0123456789abcdef", min_size=20, max_size=20).map(lambda h: "u:" + h)
views = st.builds(
    WhyView,
    model=st.none() | names, layer=st.none() | names, image=st.integers(0, 10**9) | own_ids,
    a=st.none() | st.integers(0, 10**4), b=st.none() | st.integers(0, 10**4),
)


def reopened(view: WhyView) -> tuple[WhyView, list[str]]:
    """The view a browser gets from ``view``'s link: the query as Dash hands it to ``layout(**query)``."""
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    return WhyView.from_query(query)


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    assert reopened(view) == (view, [])


query_values = st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3),
                         st.sampled_from(["u:", "u:" + "0" * 20, "１", "1_0", "-1", "1e3", "nan", "Dense_1"]))


@given(st.dictionaries(st.sampled_from([*WhyView.keys(), "mlp", "other"]), query_values))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = WhyView.from_query(query)
    assert isinstance(view.image, int) and view.image >= 0 or view.image.startswith("u:")
    assert all(value is None or value >= 0 for value in (view.a, view.b))
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_defaults_and_what_a_malformed_value_falls_back_to():
    assert WhyView.from_query({}) == (WhyView(), [])
    assert WhyView().to_query() == "?image=0"  # image 0 is kept; the classes follow the prediction
    view, notices = WhyView.from_query({"image": "１", "a": "x", "b": "9"})
    assert view == WhyView(b=9)
    assert notices == ["Image '１' is not a whole number; showing 0.",
                       "Class 'x' is not a whole number of 0 or more; explaining the predicted class."]


def test_the_predicted_class_and_the_runner_up_by_default():
    assert top_two(np.array([0.1, 0.6, 0.3])) == (1, 2)
    assert top_two(np.array([np.nan, 0.5, 0.5])) == (0, 1)  # an output that is not finite ranks nothing


@pytest.fixture
def user_images(tmp_path):
    return UserImageStore(tmp_path / "user_images")


def test_what_it_shows_adds_up_to_the_models_logits(app_store, user_images):
    store = ModelStore(app_store)
    loaded = store.get("mnist-cnn")
    result = why(store, user_images, WhyView("mnist-cnn", image=12))
    probabilities = layer_outputs(loaded, "Dense_2", [12])[0]
    assert result.contributions.layer == "Dense_1" and result.classes_are_outputs
    assert result.contributions.classes == tuple(int(c) for c in np.argsort(-probabilities)[:2])
    assert result.predicted == int(probabilities.argmax()) and result.image.key == 12
    np.testing.assert_allclose(result.probabilities, probabilities, rtol=1e-4, atol=1e-6)
    parts = result.contributions
    np.testing.assert_allclose(parts.contributions.sum(axis=1) + parts.bias, parts.logits, rtol=1e-5)
    # chosen classes stay whatever the image; A alone is compared with the predicted class
    assert why(store, user_images, WhyView("mnist-cnn", "Dense_1", 12, 4, 9)).contributions.classes == (4, 9)
    assert why(store, user_images, WhyView("mnist-cnn", image=12, a=4)).contributions.classes == (4, result.predicted)


def test_the_users_own_image_is_explained_like_a_test_image(app_store, user_images):
    store = ModelStore(app_store)
    loaded = store.get("mnist-cnn")
    own = add_array(user_images, loaded, loaded.images[3].tolist())
    result = why(store, user_images, WhyView("mnist-cnn", image=own.id))
    assert result.image.own and result.image.key == own.id
    expected = why(store, user_images, WhyView("mnist-cnn", image=3))
    np.testing.assert_allclose(result.contributions.logits, expected.contributions.logits, rtol=1e-5)


@pytest.mark.parametrize(("view", "error", "said"), [
    (WhyView("mnist-cnn", image=None), InvalidInput, "Type a test image number, 0-999."),
    (WhyView("mnist-cnn", image=1000), ImageOutOfRange, "out of range: type a test image number, 0-999"),
    (WhyView("mnist-cnn", image="u:" + "0" * 20), NotFound, ""),
    (WhyView("mnist-cnn", "Conv2D_3"), InvalidInput, "contributions need a vector layer"),
    (WhyView("mnist-cnn", a=10, b=4), InvalidInput, "class 10 is out of range"),
    (WhyView(None), InvalidInput, "Choose a model."),
])
def test_what_it_cannot_show_is_said(app_store, user_images, view, error, said):
    with pytest.raises(error) as raised:
        why(ModelStore(app_store), user_images, view)
    assert said in str(raised.value) and "None" not in str(raised.value)
