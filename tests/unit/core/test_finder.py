"""The image finder and the confusion matrix, checked against direct counts."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import InvalidInput
from app.core.finder import ImageQuery, confusion_matrix, find_images, model_confusion, parse_indices


def test_confusion_matrix_counts_pairs():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, 3), expected)


def test_model_confusion_equals_direct_count(tiny_loaded):
    predicted = tiny_loaded.engine.predictions().argmax(axis=1)
    expected = np.zeros((3, 3), dtype=int)
    for true_class, predicted_class in zip(tiny_loaded.labels, predicted, strict=True):
        expected[true_class, predicted_class] += 1
    matrix = model_confusion(tiny_loaded)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == 24


PROBABILITIES = np.array(
    [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]]
)
LABELS = np.array([0, 1, 0, 2, 1, 1])  # predicted: 0, 1, 1, 2, 0, 2 -> images 2, 4, 5 are wrong


def test_find_images_filters_by_classes_and_correctness():
    find = find_images
    assert find(LABELS, PROBABILITIES, ImageQuery(correctness="wrong", sort="index")).tolist() == [2, 4, 5]
    assert find(LABELS, PROBABILITIES, ImageQuery(correctness="correct", sort="index")).tolist() == [0, 1, 3]
    assert find(LABELS, PROBABILITIES, ImageQuery(true_class=1, sort="index")).tolist() == [1, 4, 5]
    query = ImageQuery(true_class=0, predicted_class=1)
    assert find(LABELS, PROBABILITIES, query).tolist() == [2]


def test_find_images_confidence_range_and_sort():
    query = ImageQuery(min_confidence=0.5, max_confidence=0.8, sort="confidence-asc")
    # confidences: 0.9, 0.7, 0.5, 0.8, 0.6, 0.4
    assert find_images(LABELS, PROBABILITIES, query).tolist() == [2, 4, 1, 3]
    query = ImageQuery(sort="confidence-desc")
    assert find_images(LABELS, PROBABILITIES, query).tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize(
    "query",
    [
        ImageQuery(true_class=3),
        ImageQuery(predicted_class=-1),
        ImageQuery(correctness="maybe"),
        ImageQuery(sort="random"),
        ImageQuery(min_confidence=0.9, max_confidence=0.1),
    ],
)
def test_find_images_rejects_bad_queries(query):
    with pytest.raises(InvalidInput):
        find_images(LABELS, PROBABILITIES, query)


def test_parse_indices_keeps_valid_unique_numbers_up_to_limit():
    indices, problems = parse_indices("3, 5 x 3 99 7 8", n_images=10, limit=3)
    assert indices == [3, 5, 7]
    assert len(problems) == 3  # 'x', 99 out of range, 8 over the limit


def test_find_images_sorts_and_filters_by_the_probability_of_a_chosen_class():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(200, 10))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, size=200)
    query = ImageQuery(true_class=4, sort="probability-desc", probability_class=9)
    found = find_images(labels, probabilities, query)
    # independent: the 4s ordered by P(9), highest first, by a Python sort
    expected = sorted((i for i in range(200) if labels[i] == 4), key=lambda i: -probabilities[i, 9])
    assert found.tolist() == expected
    floor = ImageQuery(true_class=4, probability_class=9, min_probability=0.2, sort="probability-asc")
    kept = find_images(labels, probabilities, floor)
    above = [i for i in expected if probabilities[i, 9] >= 0.2]
    assert kept.tolist() == sorted(above, key=lambda i: probabilities[i, 9])
    for bad in (ImageQuery(sort="probability-desc"), ImageQuery(probability_class=10), ImageQuery(min_probability=0.5),
                ImageQuery(probability_class=1, min_probability=1.5)):
        with pytest.raises(InvalidInput):
            find_images(labels, probabilities, bad)


def test_image_refs_take_user_image_ids_among_numbers_and_name_each_ignored_token():
    from app.core.finder import parse_image_refs

    own = "u:0123456789abcdef0123"
    references, problems = parse_image_refs(f"3,{own}, 17 {own} u:xyz U:0123 1_0 ٣ 99 3", 50, 8)
    assert references == [3, own, 17]
    assert problems == ["'u:xyz' is not an image id (u: and 20 hex digits)", "'U:0123' is not an image number",
                        "'1_0' is not an image number", "'٣' is not an image number", "image 99 is out of range 0-49"]
    references, problems = parse_image_refs(",".join([own] + [str(i) for i in range(9)]), 50, 8)
    assert references == [own, 0, 1, 2, 3, 4, 5, 6]
    assert problems == ["at most 8 images: 7 and later ones are left out"]
    assert parse_image_refs("u:" + "0" * 21, 50, 8)[0] == [] and parse_image_refs(None, 50, 8) == ([], [])


def test_only_a_list_sorted_by_a_class_probability_names_that_class_for_its_captions():
    assert ImageQuery(true_class=4, sort="probability-desc", probability_class=9).sorted_by_probability_of == 9
    assert ImageQuery(sort="probability-asc", probability_class=0).sorted_by_probability_of == 0
    assert ImageQuery(sort="confidence-asc", probability_class=9).sorted_by_probability_of is None
    assert ImageQuery(sort="index").sorted_by_probability_of is None


def test_the_likeness_sort_puts_the_images_nearest_the_class_mean_first():
    distances = np.array([[0, 5.0, 1], [0, 2.0, 1], [0, np.nan, 1], [0, 0.5, 1], [0, 9.0, 1], [0, 2.0, 1]])
    query = ImageQuery(true_class=1, sort="likeness", probability_class=1, likeness_layer="hidden")
    # images of class 1: 1 (2.0), 4 (9.0), 5 (2.0): nearest first, ties in index order
    assert find_images(LABELS, PROBABILITIES, query, distances).tolist() == [1, 5, 4]
    everyone = ImageQuery(sort="likeness", probability_class=1, likeness_layer="hidden")
    assert find_images(LABELS, PROBABILITIES, everyone, distances).tolist() == [3, 1, 5, 0, 4, 2]  # unknown last
    with pytest.raises(InvalidInput, match="layer"):
        find_images(LABELS, PROBABILITIES, ImageQuery(sort="likeness", probability_class=1), distances)
    with pytest.raises(InvalidInput, match="distances"):
        find_images(LABELS, PROBABILITIES, query)


def test_model_likeness_sort_ranks_a_classes_images_by_their_layers_distance_to_another_classes_mean(tiny_loaded):
    from app.core.finder import model_find_images
    from app.core.statistics import StatisticsCache
    from tests.conftest import layer_outputs

    statistics = StatisticsCache()
    query = ImageQuery(true_class=0, sort="likeness", probability_class=2, likeness_layer="hidden")
    found = model_find_images(tiny_loaded, query, statistics)
    mean_two = statistics.class_means(tiny_loaded, "hidden").means[2].ravel()
    zeros = np.flatnonzero(tiny_loaded.labels == 0)
    flat = layer_outputs(tiny_loaded, "hidden").reshape(len(tiny_loaded.labels), -1)
    expected = zeros[np.argsort(np.linalg.norm(flat[zeros] - mean_two, axis=1), kind="stable")]
    assert found.tolist() == expected.tolist()
