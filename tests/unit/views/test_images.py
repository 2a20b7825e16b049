"""Which image a view shows, read once: test images by number, the user's own by ``u:<id>``, and every malformed
value refused with a sentence, checked against the model's own test set and the stored image."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.activations import ProvidedImage
from app.core.errors import InvalidInput, NotFound
from app.core.user_images import UserImageStore, add_array
from app.views.images import ImageRef, image_ref, of_subject


@pytest.fixture
def own(tiny_loaded, tmp_path):
    """The tiny model, a user image store holding one image made for it, and that image."""
    images = UserImageStore(tmp_path / "user_images")
    values = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6, 1)
    return tiny_loaded, images, add_array(images, tiny_loaded, values.tolist()), values


@pytest.mark.parametrize("raw", [5, "5", 5.0])
def test_a_test_image_by_number(tiny_loaded, raw):
    image = image_ref(tiny_loaded, raw, None)  # a number never reads the user images
    assert (image.subject, image.key, image.name, image.own) == (5, 5, "image 5", False)
    assert np.array_equal(image.pixels, tiny_loaded.images[5])
    assert image.label == int(tiny_loaded.labels[5])


def test_the_users_own_image_by_its_id(own):
    loaded, images, stored, values = own
    image = image_ref(loaded, stored.id, images)
    assert isinstance(image.subject, ProvidedImage) and image.own and image.label is None
    assert image.key == stored.id and image.name == f"your image {stored.id}"
    np.testing.assert_allclose(image.pixels, values, atol=1e-6)


@pytest.mark.parametrize(("raw", "error"), [
    (None, InvalidInput), ("", InvalidInput), (True, InvalidInput), (2.5, InvalidInput), ("１", InvalidInput),
    ("1_0", InvalidInput), ([3], InvalidInput), (24, NotFound), (-1, NotFound), ("u:nothex", InvalidInput),
    ("u:" + "0" * 20, NotFound), ("u:" + "0" * 500, InvalidInput),
])
def test_malformed_or_unknown_images_are_refused_with_a_sentence(own, raw, error):
    loaded, images, _, _ = own
    with pytest.raises(error) as refused:
        image_ref(loaded, raw, images, "image A")
    assert str(refused.value) and len(str(refused.value)) < 300


@given(st.one_of(st.text(max_size=40), st.text(max_size=30).map(lambda text: "u:" + text), st.integers(),
                 st.floats(), st.none(), st.booleans()))
@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is only read
def test_any_value_gives_an_image_or_a_named_error(own, raw):
    loaded, images, _, _ = own
    try:
        image = image_ref(loaded, raw, images)
    except (InvalidInput, NotFound):
        return
    assert isinstance(image, ImageRef) and 0 <= image.key < loaded.engine.n_images


def test_a_subject_already_checked(tiny_loaded):
    assert of_subject(tiny_loaded, 3).label == int(tiny_loaded.labels[3])
    provided = ProvidedImage("u:" + "a" * 20, np.zeros((6, 6, 1), np.float32))
    assert of_subject(tiny_loaded, provided).label is None
