"""The Features page's attribution section called as plain functions: the pair of classes comes from the link and
the dropdowns, Grad-CAM opens at a layer with real resolution, and integrated gradients' check reads as a sentence
whose numbers are the core's own."""

from __future__ import annotations

import pytest

from app.core.attribution import GradientModels, integrated_gradients


@pytest.fixture(scope="module")
def features():
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import features

    return features


def shown_figures(children) -> list[dict]:
    """The figures of the attribution section's row, left to right."""
    _, row = children
    return [column.children.figure for column in row.children]


def test_a_link_opens_the_pair_it_names_and_grad_cam_at_a_fine_layer(features, app_store):
    page = features.layout(model="mnist-cnn", pair="1", pair_a="3", pair_b="8")
    assert page[features.PAIR].value is True
    assert (page[features.PAIR_A].value, page[features.PAIR_B].value) == (3, 8)
    assert not page[features.PAIR_A].disabled and page[features.TARGET].disabled
    assert page[features.CAM_LAYER].value == "Conv2D_2"  # 11×11, not the 3×3 Conv2D_3
    page = features.layout(model="mnist-cnn")
    assert (page[features.PAIR].value, page[features.PAIR_A].value, page[features.PAIR_B].value) == (False, 4, 9)
    assert page[features.PAIR_A].disabled and not page[features.TARGET].disabled
    assert features.layout(model="mnist-cnn", cam="Conv2D_3")[features.CAM_LAYER].value == "Conv2D_3"
    # the tiny model has classes 0-2: its first two stand in for 4 and 9
    page = features.layout(model="tiny", pair="1")
    assert (page[features.PAIR_A].value, page[features.PAIR_B].value) == (0, 1)


def test_any_two_classes_are_shown_side_by_side(features, app_store):
    children, message = features.render_attribution("mnist-cnn", 12, "gradient", -1, "Conv2D_2", True, 3, 8)
    assert message == []
    left, right = shown_figures(children)
    assert "class 3" in left["layout"]["title"]["text"] and "class 8" in right["layout"]["title"]["text"]
    assert left["data"][1]["colorbar"]["title"]["text"] == "|gradient|"
    children, message = features.render_attribution("mnist-cnn", 12, "gradient", -1, "Conv2D_2", True, 3, 10)
    assert children == [] and "the right class must be" in str(message.children)
    query = features.sync_features_query("mnist-cnn", "Conv2D_2", 12, "gradient", -1, "Conv2D_2", True, 3, 8)
    assert query.endswith("&pair=1&pair_a=3&pair_b=8")
    assert features.on_pair_toggle(True) == (True, False, False)
    assert features.on_pair_toggle(False) == (False, True, True)


def test_integrated_gradients_say_in_words_that_they_add_up_to_the_logit_change(features, app_store):
    from tests.app_context import served_context

    children, _ = features.render_attribution("mnist-cnn", 12, "integrated_gradients", 9, None, False, 4, 9)
    (figure,) = shown_figures(children)
    loaded = served_context().store.get("mnist-cnn")
    expected = integrated_gradients(GradientModels(loaded.engine), loaded.images[12], 9)
    sentence = (f"attributions add up to the logit change from black: {expected.extras['attribution_sum']:.3g} "
                f"of {expected.extras['logit_difference']:.3g}")
    first_line, _, rest = figure["layout"]["title"]["text"].partition("<br>attributions")
    assert ("attributions" + rest).replace("<br>", " ") == sentence  # wrapped to the chart, word for word
    assert first_line.startswith("Integrated gradients · class 9")
    assert figure["data"][1]["colorbar"]["title"]["text"] == "integrated gradients<br>(contribution to the logit)"


def test_a_new_model_keeps_the_pair_where_it_has_those_classes(features, app_store):
    *_, pair_a_options, pair_a, _, pair_b = features.on_features_model_change("tiny", "conv", "Conv2D_2", 4, 2)
    assert [option["value"] for option in pair_a_options] == [0, 1, 2]
    assert (pair_a, pair_b) == (0, 2)
    *_, cam, _, _, pair_a, _, pair_b = features.on_features_model_change("mnist-cnn", "Conv2D_1", "conv", 3, 8)
    assert (cam, pair_a, pair_b) == ("Conv2D_2", 3, 8)
