"""Your own digit through the real core and engine with the bundled ``mnist-cnn``: digits drawn by code are read
as the digits they are, an uploaded PNG of a test image round-trips, and a drawn image's activations equal Keras'
own computation."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
from PIL import Image

from app.core import digits
from app.core.activations import ProvidedImage
from app.core.store import ModelStore
from app.core.user_images import UserImageStore, add_drawing, add_upload, provided_image
from tests.conftest import BUNDLED_MODEL
from tests.digit_strokes import place

WIDTHS = (10, 18, 26)  # a fine pen, the pad's default, a marker (canvas pixels of a 280 px pad)
PLACES = ((30, 30, 120), (100, 60, 180), (160, 150, 110))  # top-left small, centre large, bottom-right small


@pytest.fixture(scope="module")
def loaded():
    return ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn")


def test_digits_drawn_by_code_are_read_as_those_digits(loaded, tmp_path):
    images = UserImageStore(tmp_path)
    verdicts = {}
    for digit in range(10):
        for width in WIDTHS:
            for left, top, height in PLACES:
                image = add_drawing(images, loaded, place(digit, left, top, height), width, 280)
                probabilities = loaded.engine.probabilities(ProvidedImage(image.id, image.model_input))
                verdicts[(digit, width, left)] = int(probabilities.argmax())
    right = sum(predicted == key[0] for key, predicted in verdicts.items())
    assert len(verdicts) == 90 and right / len(verdicts) >= 0.9, verdicts
    assert len(images) == 90  # every drawing is a different image


def test_without_centring_a_small_seven_in_a_corner_is_not_a_seven(loaded, tmp_path):
    images = UserImageStore(tmp_path)
    strokes = place(7, 10, 10, 70)
    centred = add_drawing(images, loaded, strokes, 12, 280)
    plain = add_drawing(images, loaded, strokes, 12, 280, centre=False)
    assert centred.id != plain.id
    assert loaded.engine.probabilities(provided_image(images, loaded, centred.id)).argmax() == 7
    assert loaded.engine.probabilities(provided_image(images, loaded, plain.id)).argmax() != 7


def test_a_drawn_images_activations_equal_keras_and_are_cached_under_its_id(loaded, tmp_path):
    images = UserImageStore(tmp_path)
    image = add_drawing(images, loaded, place(4, 60, 40, 200), 18, 280)
    provided = provided_image(images, loaded, image.id)
    for layer in ("Conv2D_2", "Dense_1"):
        want = np.asarray(keras.Model(loaded.model.inputs, loaded.model.get_layer(layer).output)(
            image.model_input[np.newaxis]))[0]
        np.testing.assert_allclose(loaded.engine.activations(layer, provided), want, rtol=1e-5, atol=1e-5)
    first = loaded.engine.forward_image(provided)
    again = loaded.engine.forward_image(ProvidedImage(image.id, image.model_input))
    assert all(output is kept for output, kept in zip(again, first, strict=True))  # one pass per id, then cached
    with pytest.raises(ValueError, match="takes"):
        loaded.engine.probabilities(ProvidedImage("u:" + "0" * 20, np.zeros((32, 32, 3), np.float32)))


@pytest.mark.parametrize("index", [0, 7, 42, 123, 999])
def test_an_uploaded_png_of_a_test_image_round_trips_to_the_same_prediction(loaded, tmp_path, index):
    test_image = loaded.images[index, :, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(np.round(test_image * 255).astype(np.uint8)).save(buffer, format="PNG")
    image = add_upload(UserImageStore(tmp_path), loaded, buffer.getvalue(), 10**7)
    assert image.meta["recipe"]["kind"] == digits.MNIST
    ours = loaded.engine.probabilities(ProvidedImage(image.id, image.model_input)).argmax()
    assert ours == loaded.engine.probabilities(index).argmax()
