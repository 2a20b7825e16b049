"""Page callbacks called directly, as plain functions (as the Dash testing docs show), on the bundled model.

Each number is checked against an independent computation: a truncated Keras model built in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from dash import no_update

from app.core.grid import tile
from app.figures.heatmaps import decode_array
from tests.conftest import layer_outputs
from tests.figure_checks import assert_codes_stand_for


@pytest.fixture(scope="module")
def pages():
    """The page modules, registered with a Dash app (``dash.register_page`` needs one)."""
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import classes, compare, explore, finder, train

    return {"explore": explore, "compare": compare, "finder": finder, "classes": classes, "train": train}


@pytest.fixture
def bundled(app_store):
    from app import services

    return services.store().get("mnist-cnn")


def alert_text(component) -> str:
    return str(component.children)


def test_explore_render_shows_the_layer_the_image_and_its_prediction(pages, bundled):
    heatmap, image, bars, info, query, message = pages["explore"].render("mnist-cnn", "Conv2D_3", 42, "jet", 0, 0)
    expected_grid, _ = tile(layer_outputs(bundled, "Conv2D_3", [42])[0])
    assert_codes_stand_for(heatmap["data"][0], expected_grid)
    np.testing.assert_allclose(decode_array(image["data"][0]["z"]), bundled.images[42][..., 0])
    probabilities = layer_outputs(bundled, "Dense_2", [42])[0]
    np.testing.assert_allclose(bars["data"][0]["y"], probabilities, rtol=1e-4, atol=1e-6)
    assert query == "?model=mnist-cnn&layer=Conv2D_3&image=42&cmap=jet" and message == []
    assert f"Image 42: true class {bundled.labels[42]}" in "".join(str(part.children) for part in info)


def test_explore_render_reports_bad_input_in_the_message_area(pages, bundled):
    *kept, message = pages["explore"].render("mnist-cnn", "Conv2D_9", 1, "viridis", 0, 0)
    assert all(value is no_update for value in kept) and "no layer 'Conv2D_9'" in alert_text(message)
    *_, message = pages["explore"].render("mnist-cnn", "Conv2D_1", 5000, "viridis", 0, 0)
    assert "out of range" in alert_text(message)
    *_, message = pages["explore"].render("absent", "Conv2D_1", 0, "viridis", 0, 0)
    assert "no model named 'absent'" in alert_text(message)
    *_, message = pages["explore"].render("mnist-cnn", None, 0, "viridis", 0, 0)
    assert "Choose a model" in alert_text(message)


def test_explore_layout_explains_what_it_could_not_open(pages, bundled):
    page = pages["explore"].layout(model="absent", layer="Conv2D_9", image="99999")
    notices = " ".join(alert_text(alert) for alert in page.children[0].children)
    assert "'absent' is not available" in notices and "'Conv2D_9' is not in" in notices
    assert "out of range 0-999" in notices


def test_compare_cards_share_one_colour_scale_and_difference_is_b_minus_a(pages, bundled):
    cards, options, a, _, b, message = pages["compare"].render_images("mnist-cnn", "Conv2D_3", "3, 12, x", "jet",
                                                                      None, None)
    assert [option["value"] for option in options] == [3, 12] and (a, b) == (3, 12)
    assert "'x' is not an image number" in alert_text(message[0])
    grids = [column.children.children.children[2].figure["data"][0] for column in cards.children]
    outputs = layer_outputs(bundled, "Conv2D_3", [3, 12])
    assert len({tuple(grid["meta"]["range"]) for grid in grids}) == 1  # one scale for every card
    np.testing.assert_allclose(grids[0]["meta"]["range"], [outputs.min(), outputs.max()], rtol=1e-4)
    for grid, output in zip(grids, outputs, strict=True):
        assert_codes_stand_for(grid, tile(output)[0])
    figure, query, note = pages["compare"].render_difference(3, 12, "mnist-cnn", "Conv2D_3", "3, 12", "jet")
    expected, _ = tile(outputs[1] - outputs[0])
    np.testing.assert_allclose(decode_array(figure["data"][0]["z"]), expected, rtol=1e-4, atol=1e-5)
    assert query == "?model=mnist-cnn&layer=Conv2D_3&images=3,12&cmap=jet&a=3&b=12" and note == []


def test_finder_lists_exactly_the_cell_of_the_confusion_matrix(pages, bundled):
    thumbnails, count, confusion, query, message = pages["finder"].render("mnist-cnn", 4, 9, "all", [0, 1],
                                                                          "index", None, [])
    predicted = layer_outputs(bundled, "Dense_2").argmax(axis=1)
    expected = np.flatnonzero((bundled.labels == 4) & (predicted == 9))
    assert [item.to_plotly_json()["props"]["data-image"] for item in thumbnails] == expected.tolist()
    assert count.startswith(f"{len(expected)} image") and message == []
    assert query == "?model=mnist-cnn&true=4&predicted=9&sort=index"
    assert confusion["data"][0]["customdata"][4][9] == len(expected)


def test_classes_means_and_mlp_contributions_add_up(pages, bundled):
    mean_a, *_, info, message = pages["classes"].render_classes("mnist-cnn", "Dense_1", 4, 9, "viridis")
    hidden = layer_outputs(bundled, "Dense_1")
    expected, _ = tile(hidden[bundled.labels == 4].mean(axis=0))
    np.testing.assert_allclose(decode_array(mean_a["data"][0]["z"]), expected, rtol=1e-4, atol=1e-5)
    assert "all 100 test images of class 4" in info and message == []
    figure_a, _, _, summary, message = pages["classes"].render_mlp("mnist-cnn", "Dense_1", 5, 4, 9)
    kernel, _ = bundled.model.get_layer("Dense_2").get_weights()
    expected, _ = tile(hidden[5] * kernel[:, 4])
    np.testing.assert_allclose(decode_array(figure_a["data"][0]["z"]), expected, rtol=1e-4, atol=1e-5)
    *_, message = pages["classes"].render_mlp("mnist-cnn", "Dense_1", 5000, 4, 9)
    assert "out of range" in alert_text(message)


def test_train_form_refuses_invalid_values_with_every_problem(pages, app_store):
    train = pages["train"]
    values = {**train.default_form(), "epochs": 0, "filters": "32, x"}
    message, pinned, *_ = train.on_start(1, *(values[key] for key in train.FIELD))
    assert pinned is no_update
    text = str(message.children)
    assert "Conv filters" in text


def test_explore_says_when_an_image_cannot_be_scored(pages, app_store):
    import keras

    from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder

    keras.backend.clear_session()
    images, labels = tiny_test_set()
    images[3] = np.inf
    write_model_folder(app_store, "inf-model", build_tiny_model(), images, labels)
    *_, bars, info, _, message = pages["explore"].render("inf-model", "conv", 3, "viridis", 0, 0)
    assert message == [] and bars["layout"]["title"]["text"] == "no prediction: the output is not finite"
    assert "no prediction" in "".join(str(part.children) for part in info)


def test_same_image_or_class_twice_says_why_the_difference_is_blank(pages, bundled):
    figure, _query, _message = pages["compare"].render_difference(12, 12, "mnist-cnn", "Conv2D_3", "12, 7", "viridis")
    assert figure["data"] == [] and "same image (#12)" in figure["layout"]["annotations"][0]["text"]
    _a, _b, difference, *_ = pages["classes"].render_classes("mnist-cnn", "Conv2D_3", 4, 4, "viridis")
    assert difference["data"] == [] and "both 4" in difference["layout"]["annotations"][0]["text"]


def test_output_nodes_are_labelled_with_class_names_and_mlp_offers_only_layers_feeding_it(pages, bundled):
    heatmap, *_ = pages["explore"].render("mnist-cnn", "Dense_2", 42, "viridis", 0, 0)
    assert heatmap["data"][0]["text"] == [list(bundled.class_names)]  # one strip of 10, in class order
    assert [option["value"] for option in pages["classes"]._mlp_options(bundled)] == ["Dense_1"]


def test_finder_closest_to_the_other_class_lists_every_4_by_p9(pages, bundled):
    true_class, predicted, probability_class, sort = pages["finder"].on_closest(1, [4, 9])
    assert (true_class, predicted, probability_class, sort) == (4, None, 9, "probability-desc")
    thumbnails, *_ = pages["finder"].render("mnist-cnn", 4, None, "all", [0, 1], sort, 9, [])
    probabilities = layer_outputs(bundled, "Dense_2")
    fours = np.flatnonzero(bundled.labels == 4)
    expected = fours[np.argsort(-probabilities[fours, 9], kind="stable")][: pages["finder"].MAX_THUMBNAILS]
    assert [item.to_plotly_json()["props"]["data-image"] for item in thumbnails] == expected.tolist()
