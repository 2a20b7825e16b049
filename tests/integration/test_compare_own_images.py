"""Your own digit on the Compare page, through the real callbacks, the real user image store (in a temporary
STATE_DIR) and the bundled ``mnist-cnn``: a ``u:`` id among test-image numbers is a column like the others (its
grid and difference checked against Keras), the URL keeps it, the page's drawing pad and upload add columns, and a
malformed or unknown id is a message while the other images still show."""

from __future__ import annotations

import base64
import io

import keras
import numpy as np
import pytest
from dash import no_update
from PIL import Image

from app.core.grid import tile
from app.core.user_images import add_drawing
from app.figures.codec import decode_array
from app.views.images import image_ref
from tests.app_context import served_context
from tests.digit_strokes import place
from tests.figure_checks import assert_codes_stand_for

UNKNOWN = "u:" + "0" * 20


@pytest.fixture(scope="module")
def compare():
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import compare

    return compare


@pytest.fixture
def loaded(app_state):
    return served_context().store.get("mnist-cnn")


def keras_outputs(loaded, layer: str, inputs: np.ndarray) -> np.ndarray:
    """The layer's output computed by Keras itself, independently of the app's engine."""
    return np.asarray(keras.Model(loaded.model.inputs, loaded.model.get_layer(layer).output)(inputs))


def card_parts(cards):
    """Each card's (heading text, grid figure data)."""
    parts = []
    for column in cards.children:
        body = column.children.children.children
        parts.append(("".join(str(getattr(part, "children", part)) for part in body[1].children),
                      body[2].figure["data"][0]))
    return parts


def test_a_user_image_among_test_images_is_a_column_and_its_link_keeps_it(compare, loaded):
    seven = add_drawing(served_context().user_images, loaded, place(7, 70, 40, 200), 18, 280)
    cards, options, a, _, b, message = compare.render_images(
        "mnist-cnn", "Conv2D_3", f"3, {seven.id},17", "jet", seven.id, 3)
    assert [option["value"] for option in options] == [3, seven.id, 17] and message == []
    assert (a, b) == (seven.id, 3)
    (first, _), (own, own_grid), _ = card_parts(cards)
    assert first.startswith("#3 · true class")
    assert own.startswith(f"your image {seven.id} · predicted 7") and "true class" not in own
    outputs = keras_outputs(loaded, "Conv2D_3", np.stack([loaded.images[3], seven.model_input, loaded.images[17]]))
    expected, _ = tile(outputs[1])
    assert_codes_stand_for(own_grid, expected)
    assert own_grid["meta"]["values"].startswith("/api/models/mnist-cnn/grid?layer=Conv2D_3&image=u%3A")
    # the shared colour scale covers the user's image too
    np.testing.assert_allclose(own_grid["meta"]["range"], [outputs.min(), outputs.max()], rtol=1e-4)

    figure, query, note = compare.render_difference(seven.id, 3, "mnist-cnn", "Conv2D_3", f"3, {seven.id},17", "jet")
    expected, _ = tile(outputs[0] - outputs[1])
    np.testing.assert_allclose(decode_array(figure["data"][0]["z"]), expected, rtol=1e-4, atol=1e-5)
    encoded = seven.id.replace(":", "%3A")
    assert query == f"?model=mnist-cnn&layer=Conv2D_3&images=3,{encoded},17&cmap=jet&a={encoded}&b=3"
    assert note == []

    # the link reopens the same columns and the same A and B
    page = compare.layout(model="mnist-cnn", layer="Conv2D_3", images=f"3,{seven.id},17", a=seven.id, b="3")
    assert page[compare.IMAGES].value == f"3,{seven.id},17"
    assert page[compare.DIFF_A].value == seven.id and page[compare.DIFF_B].value == 3


def test_malformed_or_unknown_ids_are_messages_and_the_other_images_still_show(compare, loaded):
    cards, options, *_, message = compare.render_images(
        "mnist-cnn", "Conv2D_3", f"3, u:nothex, {UNKNOWN}, 17", "jet", None, None)
    assert [option["value"] for option in options] == [3, 17] and len(cards.children) == 2
    text = str(message[0].children)
    assert "'u:nothex' is not an image id" in text and f"image {UNKNOWN} is not available" in text
    # only bad ids: a message, no exception
    *kept, message = compare.render_images("mnist-cnn", "Conv2D_3", f"{UNKNOWN}", "jet", None, None)
    assert kept == [[], [], None, [], None] and "is not available" in str(message.children)
    figure, query, message = compare.render_difference(UNKNOWN, 3, "mnist-cnn", "Conv2D_3", "3", "jet")
    assert "no drawn or uploaded image" in str(message.children)


def test_the_pad_draws_one_following_column_and_uploads_add_columns(compare, loaded):
    images, drawing, preview, message = compare.on_drawing(
        {"strokes": place(4, 60, 40, 200), "width": 18, "size": 280}, True, "mnist-cnn", "3, 12", None)
    first = drawing
    assert images == f"3,12,{first}" and preview == f"/api/inputs/{first}/preview.png" and message == ""
    # the next stroke (here: another digit) replaces the drawing's column in place
    images, drawing, *_ = compare.on_drawing(
        {"strokes": place(7, 70, 40, 200), "width": 18, "size": 280}, True, "mnist-cnn", f"3,{first},12", first)
    assert drawing != first and images == f"3,{drawing},12"
    assert served_context().store.get("mnist-cnn").engine.probabilities(
        image_ref(loaded, drawing, served_context().user_images).subject).argmax() == 7
    # Clear removes it
    assert compare.on_drawing({"strokes": []}, True, "mnist-cnn", f"3,{drawing},12", drawing)[:2] == ("3,12", None)
    # an upload (test image 5 as a PNG) adds a column that predicts what test image 5 predicts
    buffer = io.BytesIO()
    Image.fromarray(np.round(loaded.images[5, :, :, 0] * 255).astype(np.uint8)).save(buffer, format="PNG")
    contents = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    images, preview, message = compare.on_upload([contents], True, "mnist-cnn", "3,12")
    uploaded = images.split(",")[-1]
    assert images.startswith("3,12,u:") and message == ""
    subject = image_ref(loaded, uploaded, served_context().user_images).subject
    assert loaded.engine.probabilities(subject).argmax() == loaded.engine.probabilities(5).argmax()
    # a full list says so and changes nothing
    full = ",".join(map(str, range(8)))
    images, drawing, _, message = compare.on_drawing(
        {"strokes": place(1, 70, 40, 200), "width": 18, "size": 280}, True, "mnist-cnn", full, None)
    assert images is no_update and drawing is no_update and "at most 8 images" in str(message.children)
    # a malformed drawing is a message
    *_, message = compare.on_drawing({"strokes": "x"}, True, "mnist-cnn", "3", None)
    assert message.children and "Alert" in type(message).__name__


def test_explores_compare_buttons_carry_the_shown_own_image_by_its_id(compare, loaded):
    from app.pages import explore

    seven = add_drawing(served_context().user_images, loaded, place(7, 70, 40, 200), 18, 280)
    shown = {"id": seven.id, "over": 5, "source": "pad"}
    href = explore.on_compare_choice_change([3], "?x", "mnist-cnn", "Conv2D_1", 5, "jet", shown)
    assert href == f"/compare?model=mnist-cnn&layer=Conv2D_1&images=3,{seven.id.replace(':', '%3A')}&cmap=jet"
    assert explore.on_add_to_compare(1, [3], 5, shown) == ([3, seven.id], f"Your image {seven.id} is in the basket.")
    # without an own image shown, the test image as before
    assert explore.on_add_to_compare(1, [3], 5, None) == ([3, 5], "Image 5 is in the basket.")


def test_explore_offers_a_shown_own_image_to_a_training_run_whose_form_then_watches_it(compare, loaded):
    from urllib.parse import parse_qs, urlsplit

    from app.pages import explore, train

    seven = add_drawing(served_context().user_images, loaded, place(7, 70, 40, 200), 18, 280)
    shown = {"id": seven.id, "over": 5, "source": "pad"}
    *_, info, _query, _message = explore.render("mnist-cnn", "Conv2D_1", 5, "jet", False, False, False, shown)
    links = {part.children: part.href for part in info[1:] if type(part).__name__ == "A"}
    assert list(links) == ["Why this prediction?", "watch it learn"]
    href = links["watch it learn"]
    assert urlsplit(href).path == "/train" and parse_qs(urlsplit(href).query) == {"probe": [seven.id]}
    assert parse_qs(urlsplit(links["Why this prediction?"]).query)["image"] == [seven.id]
    *_, info, _query, _message = explore.render("mnist-cnn", "Conv2D_1", 5, "jet", False, False, False, None)
    # a test image: a new run's test set need not be this model's, so no "watch it learn"
    assert [part.children for part in info if type(part).__name__ == "A"] == ["Why this prediction?"]

    def watched(**query):
        fields = [part for part in train.layout(**query)._traverse()
                  if getattr(part, "id", None) == train.FIELD["probe_image"]]
        assert len(fields) == 1
        return fields[0].value

    assert watched(probe=parse_qs(urlsplit(href).query)["probe"][0]) == seven.id
    assert watched(probe="12") == 12
    for bad in ("u:xyz", "-1", "1_0", "x" * 5000, ""):
        assert watched(probe=bad) == 0  # left out: the form's default
