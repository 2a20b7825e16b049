"""Page callbacks called directly, as plain functions (as the Dash testing docs show), on the bundled model.

Each number is checked against an independent computation: a truncated Keras model built in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from dash import no_update

from app.config import PROJECT_ROOT
from app.core.grid import tile
from app.figures.codec import decode_array
from tests.conftest import layer_outputs
from tests.figure_checks import assert_codes_stand_for


@pytest.fixture(scope="module")
def pages():
    """The page modules, registered with a Dash app (``dash.register_page`` needs one)."""
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import classes, compare, explore, finder, train, why

    return {"explore": explore, "compare": compare, "finder": finder, "classes": classes, "train": train, "why": why}


@pytest.fixture
def bundled(app_store):
    from tests.app_context import served_context

    return served_context().store.get("mnist-cnn")


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


def caption_lines(thumbnail) -> list[str]:
    """A finder thumbnail's caption as a reader sees it: one string per line."""
    lines = [""]
    for part in thumbnail.children[1].children:
        if part.children is None:  # a line break
            lines.append("")
        else:
            lines[-1] += str(part.children)
    return lines


def test_finder_sorted_by_p9_captions_each_4_with_its_p9_as_the_model_computes_it(pages, bundled):
    thumbnails, count, *_, message = pages["finder"].render("mnist-cnn", 4, None, "all", [0, 1], "probability-desc",
                                                            9, [])
    assert count == "100 images match" and message == []
    # independent: the output layer's softmax, redone in numpy from the layer before it and the layer's weights
    kernel, bias = bundled.model.get_layer("Dense_2").get_weights()
    logits = layer_outputs(bundled, "Dense_1").astype(np.float64) @ kernel + bias
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    images = [item.to_plotly_json()["props"]["data-image"] for item in thumbnails]
    assert sorted(images) == np.flatnonzero(bundled.labels == 4).tolist()
    assert np.all(np.diff(softmax[images, 9]) <= 1e-6)  # P(9), highest first
    captions = {image: caption_lines(item) for image, item in zip(images, thumbnails, strict=True)}
    for image, lines in captions.items():
        assert lines[:2] == [f"#{image}", f"4→{softmax[image].argmax()}"]
        name, shown = lines[2].split(" ")
        assert name == "P(9)"
        p9 = softmax[image, 9]  # right to the last digit shown
        assert abs(float(shown) - p9) <= 0.5 * 10 ** -len(shown.split(".")[1]) + 1e-6, (image, shown, p9)
    # the images: #663 is the one 9-like 4, #988 (third) is not
    assert images[0] == 663 and captions[663][2] == "P(9) 0.43"
    assert images[2] == 988 and captions[988][2] == "P(9) 0.004"
    # another order keeps the confidence
    thumbnails, *_ = pages["finder"].render("mnist-cnn", 4, None, "all", [0, 1], "index", 9, [])
    assert all(len(caption_lines(item)) == 2 and caption_lines(item)[1].endswith("%") for item in thumbnails)


def test_classes_means_and_why_contributions_add_up(pages, bundled):
    mean_a, *_, info, message = pages["classes"].render_classes("mnist-cnn", "Dense_1", 4, 9, "viridis")
    hidden = layer_outputs(bundled, "Dense_1")
    expected, _ = tile(hidden[bundled.labels == 4].mean(axis=0))
    assert_codes_stand_for(mean_a["data"][0], expected)  # the exact values: the class-grid route (its own test)
    assert "all 100 test images of class 4" in info and message == []
    heading, _image, bars, summary, figure_a, _b, _difference, query, message = pages["why"].render(
        "mnist-cnn", "Dense_1", 5, None, 4, 9)
    kernel, _ = bundled.model.get_layer("Dense_2").get_weights()
    expected, _ = tile(hidden[5] * kernel[:, 4])
    np.testing.assert_allclose(decode_array(figure_a["data"][0]["z"]), expected, rtol=1e-4, atol=1e-5)
    assert query == "?model=mnist-cnn&layer=Dense_1&image=5&a=4&b=9" and message == []
    assert f"Image 5: true class {bundled.labels[5]}" in "".join(str(part.children) for part in heading)
    np.testing.assert_allclose(bars["data"][0]["y"], layer_outputs(bundled, "Dense_2", [5])[0], rtol=1e-4, atol=1e-6)
    *_, message = pages["why"].render("mnist-cnn", "Dense_1", 5000, None, 4, 9)
    assert "out of range" in alert_text(message)


def test_why_explains_the_predicted_class_against_the_runner_up_unless_classes_are_chosen(pages, bundled):
    probabilities = layer_outputs(bundled, "Dense_2", [663])[0]  # the blog's 4 that looks like a 9
    first, second = np.argsort(-probabilities)[:2]
    *_, figure_a, figure_b, _difference, query, _message = pages["why"].render("mnist-cnn", "Dense_1", 663, None, -1,
                                                                               -1)
    assert figure_a["layout"]["title"]["text"] == f"contributions to class {first}"
    assert figure_b["layout"]["title"]["text"] == f"contributions to class {second}"
    assert query == "?model=mnist-cnn&layer=Dense_1&image=663"  # the classes follow the image's prediction


def test_classes_links_to_why_with_its_two_classes_and_keeps_old_mlp_links_working(pages, bundled):
    said = pages["classes"].show_why_link("mnist-cnn", 4, 9, {"image": 12, "mlp": None})
    link = said[-1].to_plotly_json()["props"]
    assert link["href"] == "/why?model=mnist-cnn&image=12&a=4&b=9" and link["children"] == (
        "Why this prediction? (image 12)")
    # an old link to the MLP view, when it lived on Classes: the page offers to open it, with its layer and classes
    page = pages["classes"].layout(model="mnist-cnn", a="4", b="9", mlp="Dense_1", image="12")
    notice = str(page[pages["classes"].IDS.notice].children)
    assert "Open the MLP view of image 12" in notice and "/why?model=mnist-cnn&layer=Dense_1&image=12&a=4&b=9" in notice
    assert "Open the MLP view" not in str(pages["classes"].layout(model="mnist-cnn", image="12")[
        pages["classes"].IDS.notice].children)


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
    write_model_folder(app_store, "inf-model", build_tiny_model(activation="linear"), images, labels)
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
    assert [option["value"] for option in pages["why"]._layer_options(bundled)] == ["Dense_1"]


def test_finder_closest_to_the_other_class_lists_every_4_by_p9(pages, bundled):
    true_class, predicted, probability_class, sort = pages["finder"].on_closest(1, [4, 9])
    assert (true_class, predicted, probability_class, sort) == (4, None, 9, "probability-desc")
    thumbnails, *_ = pages["finder"].render("mnist-cnn", 4, None, "all", [0, 1], sort, 9, None, [])
    probabilities = layer_outputs(bundled, "Dense_2")
    fours = np.flatnonzero(bundled.labels == 4)
    expected = fours[np.argsort(-probabilities[fours, 9], kind="stable")][: pages["finder"].MAX_THUMBNAILS]
    assert [item.to_plotly_json()["props"]["data-image"] for item in thumbnails] == expected.tolist()


def test_an_empty_cell_offers_its_closest_images_by_p_and_by_the_likeness_layer(pages, bundled):
    *_, offer, shown, by_likeness, shown_too, cell = pages["finder"].on_cell_click(
        {"points": [{"x": 9, "y": 4}]}, "Dense_1")
    assert offer == "class 4 closest to class 9 (by P(9))" and by_likeness == "... or nearest the mean 9 at Dense_1"
    assert shown == shown_too == {} and cell == [4, 9]
    assert pages["finder"].on_closest_by_likeness(1, cell) == (4, None, 9, "likeness")
    thumbnails, count, *_ = pages["finder"].render("mnist-cnn", 4, None, "all", [0, 1], "likeness", 9, "Dense_1", [])
    dense = layer_outputs(bundled, "Dense_1").astype(np.float64)
    fours = np.flatnonzero(bundled.labels == 4)
    distance = np.linalg.norm(dense[fours] - dense[bundled.labels == 9].mean(axis=0), axis=1)
    shown_order = [item.to_plotly_json()["props"]["data-image"] for item in thumbnails]
    assert shown_order[:10] == fours[np.argsort(distance, kind="stable")][:10].tolist()
    assert "nearest first to the mean 9 at Dense_1" in count


def test_an_empty_test_image_box_asks_for_a_number_in_range():
    from app.pages import features, why

    said = str(why.render("mnist-cnn", "Dense_1", None, None, 4, 9)[-1])
    assert "Type a test image number, 0-999." in said and "None" not in said
    said = str(features.render_attribution("mnist-cnn", None, "gradient", -1, None, False, 4, 9))
    assert "Type a test image number, 0-999." in said and "None" not in said


def test_classes_of_a_layer_with_1280_maps_answer_within_150_kb(pages, app_store):
    """MobileNetV2's out_relu is 7×7×1280: its class means travel as codes, shrunk to the drawn size, with the
    exact values behind the hover (the class-grid route), not as 60 kB of float32 per grid."""
    import keras
    from dash._utils import to_json

    from tests.conftest import write_model_folder

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((9, 9, 1)), keras.layers.Conv2D(1280, 3, activation="relu", name="wide"),
                              keras.layers.GlobalAveragePooling2D(name="pool"),
                              keras.layers.Dense(10, activation="softmax", name="output")])
    rng = np.random.default_rng(0)
    write_model_folder(app_store, "wide", model, rng.random((40, 9, 9, 1), dtype=np.float32), np.arange(40) % 10)
    answer = pages["classes"].render_classes("wide", "wide", 4, 9, "viridis")
    size = len(to_json(list(answer)))
    assert size <= 150_000, size
    mean_a, _b, difference = answer[:3]
    assert mean_a["data"][0]["meta"]["values"].startswith("/api/models/wide/class-grid?layer=wide&label=4")
    assert difference["data"][0]["meta"]["values"].endswith("&a=4&b=9&version=" + mean_a["data"][0]["meta"][
        "values"].rsplit("version=", 1)[1])
    assert difference["layout"]["title"]["text"] and "zmid" not in difference["data"][0]
    widest = pages["classes"].render_classes("mnist-cnn", "Conv2D_1", 4, 9, "viridis")  # 32 maps of 26 × 26
    assert len(to_json(list(widest))) <= 150_000


def test_compare_of_five_224_px_pictures_answers_within_150_kb(pages, app_store):
    """Five cards of a 224 px model's first layer (32 maps of 112 × 112): the grids share 48,000 cells and the
    pictures travel at the 140 px they are drawn at, placed on the image's own pixels."""
    import keras
    from dash._utils import to_json

    from tests.conftest import write_model_folder

    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((224, 224, 3)),
                              keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="first"),
                              keras.layers.GlobalAveragePooling2D(name="pool"),
                              keras.layers.Dense(10, activation="softmax", name="output")])
    # pictures like a photograph's test set: the bundled digits at 224 px, tinted
    digits = np.kron(bundled_digits(10), np.ones((1, 8, 8, 1), np.float32))
    tints = np.random.default_rng(1).uniform(0.3, 1, (10, 1, 1, 3)).astype(np.float32)
    write_model_folder(app_store, "wide-input", model, digits * tints + (1 - digits) * tints[:, :, :, ::-1] * 0.4,
                       np.arange(10))
    answer = pages["compare"].render_images("wide-input", "first", "0, 1, 2, 3, 4", "viridis", None, None)
    assert answer[-1] == [] and len(to_json(list(answer))) <= 150_000
    figures = [graph.figure for graph in _graphs(answer[0])]
    pictures = [figure["data"][0] for figure in figures if figure["data"][0]["type"] == "image"]
    assert len(pictures) == 5 and all(picture["dx"] == 224 / 140 and picture["x0"] == 224 / 140 / 2 - 0.5
                                      for picture in pictures)
    grids = [figure["data"][0] for figure in figures if figure["data"][0]["type"] == "heatmap"]
    assert len(grids) == 5 and all(decode_array(grid["z"]).size <= 48_000 // 5 for grid in grids)


def bundled_digits(count: int) -> np.ndarray:
    """The first ``count`` test digits of the bundled model [count, 28, 28, 1] in [0, 1]."""
    with np.load(PROJECT_ROOT / "model_store" / "mnist-cnn" / "test_set.npz", allow_pickle=False) as test_set:
        return test_set["images"][:count].astype(np.float32)


def _graphs(component) -> list:
    """Every dcc.Graph under a Dash component tree."""
    found = [component] if type(component).__name__ == "Graph" else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found += _graphs(child)
    return found
