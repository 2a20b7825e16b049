"""The Features page's view (with its pair of classes) round-trips through its link, and any query gives a view and
notices; a unit's and a layer's optimal inputs come from the stored layer result or are computed as the core
computes them."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.attribution import METHODS, GradientModelCache
from app.core.errors import Conflict
from app.core.features import DEFAULT_SETTINGS, LayerFeatures, save_result, unit_feature
from app.core.statistics import StatisticsCache
from app.jobs.features import FeatureJobs, write_json
from app.views.features import FeaturesView, layer_optimal_inputs, unit_optimal_input

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64)
views = st.builds(
    FeaturesView, model=st.none() | names, layer=st.none() | names, image=st.integers(0, 10**9),
    method=st.sampled_from(METHODS), target=st.none() | st.integers(0, 10**4), cam=st.none() | names,
    pair=st.booleans(), pair_a=st.integers(0, 10**4), pair_b=st.integers(0, 10**4),
    unit=st.none() | st.integers(0, 10**6),
)


@given(views)
@settings(max_examples=300, derandomize=True)
def test_a_view_reopens_from_its_link(view):
    query = {key: values[0] for key, values in parse_qs(urlsplit(view.to_query()).query).items()}
    assert FeaturesView.from_query(query) == (view, [])


@given(st.dictionaries(st.sampled_from([*FeaturesView.keys(), "other"]),
                       st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3))))
@settings(max_examples=400, derandomize=True)
def test_any_query_gives_a_view_and_notices(query):
    view, notices = FeaturesView.from_query(query)
    assert view.image >= 0 and view.method in METHODS and (view.target is None or view.target >= 0)
    assert isinstance(view.pair, bool) and view.pair_a >= 0 and view.pair_b >= 0
    assert all(isinstance(notice, str) and notice.endswith(".") for notice in notices)


def test_defaults_and_fallbacks():
    assert FeaturesView.from_query({}) == (FeaturesView(), [])
    view, notices = FeaturesView.from_query({"method": "nope", "target": "-1", "image": "x"})
    assert view == FeaturesView()
    assert len(notices) == 2
    view, notices = FeaturesView.from_query({"pair": "yes", "pair_a": "３", "pair_b": "8"})
    assert (view.pair, view.pair_a, view.pair_b) == (True, 4, 8)
    assert notices == ["Left class '３' is not a whole number of 0 or more; showing class 4."]


def test_the_class_pair_is_in_the_link_unless_it_is_4_and_9():
    assert FeaturesView(pair=True).to_query() == "?image=0&method=gradient&pair=1"
    query = FeaturesView(model="mnist-cnn", pair=True, pair_a=3, pair_b=8).to_query()
    assert query == "?model=mnist-cnn&image=0&method=gradient&pair=1&pair_a=3&pair_b=8"
    assert FeaturesView.from_query({"pair": "1", "pair_a": "3", "pair_b": "8"})[0] == FeaturesView(
        pair=True, pair_a=3, pair_b=8)
    assert FeaturesView(pair_a=9, pair_b=4).to_query() == "?image=0&method=gradient&pair_a=9&pair_b=4"


def test_a_units_optimal_input_is_computed_when_no_layer_result_is_stored(tiny_loaded, tmp_path):
    from tests.conftest import layer_outputs

    jobs = FeatureJobs(tmp_path / "state", tmp_path / "models")
    gradients = GradientModelCache()
    shown = unit_optimal_input(jobs, StatisticsCache(), gradients, tiny_loaded, "conv", 1)
    # the unit's largest output over the test set, from Keras itself, scales the objective the same way
    largest = float(layer_outputs(tiny_loaded, "conv")[..., 1].max())
    expected = unit_feature(gradients.for_model(tiny_loaded), "conv", 1, largest)
    assert shown.source == "computed" and shown.feature.unit == 1
    np.testing.assert_allclose(shown.feature.image, expected.image, atol=1e-5)
    assert shown.feature.dead == (largest == 0.0)


def test_a_stored_layer_result_is_used_as_it_is(tiny_loaded, tmp_path):
    jobs = FeatureJobs(tmp_path / "state", tmp_path / "models")
    images = np.stack([np.full((8, 8, 1), value, np.float32) for value in (0.25, 0.75)])
    stored = LayerFeatures("conv", images, np.array([1.5, 2.5], np.float32), np.array([0.1, 0.2], np.float32),
                           np.array([False, True]))
    save_result(jobs.paths(tiny_loaded.name, tiny_loaded.version, "conv", DEFAULT_SETTINGS)[0], stored)
    shown = unit_optimal_input(jobs, StatisticsCache(), GradientModelCache(), tiny_loaded, "conv", 1)
    assert shown.source == "stored" and shown.feature.dead and shown.feature.objective == 2.5
    np.testing.assert_array_equal(shown.feature.image, images[1])
    assert layer_optimal_inputs(jobs, tiny_loaded, "conv").result.objective.tolist() == [1.5, 2.5]


def test_a_failed_layer_visualisation_is_a_conflict_that_says_it_is_retried(tiny_loaded, tmp_path):
    jobs = FeatureJobs(tmp_path / "state", tmp_path / "models")
    _, progress, _, _ = jobs.paths(tiny_loaded.name, tiny_loaded.version, "conv", DEFAULT_SETTINGS)
    progress.parent.mkdir(parents=True)
    write_json(progress, {"failed": time.time(), "error": "out of memory"})
    with pytest.raises(Conflict, match="The visualisation of conv failed: out of memory. It is tried again"):
        layer_optimal_inputs(jobs, tiny_loaded, "conv")


def test_the_progress_sentence_reads_steps_or_the_stage_never_a_placeholder():
    from app.jobs.features import LayerJob
    from app.views.features import progress_sentence

    assert progress_sentence(LayerJob("running", None, 48, 128, "64 units at once"), "Conv2D_2") == (
        "Optimising the inputs of Conv2D_2: step 48 of 128 (64 units at once).")
    starting = progress_sentence(LayerJob("running"), "Dense_1")
    assert "starting a background process" in starting and "(starting, starting)" not in starting
    finding = progress_sentence(LayerJob("running", stage="finding the units that never fire on the test set"), "x")
    assert finding.endswith("finding the units that never fire on the test set…")
    assert "waits for another layer" in progress_sentence(LayerJob("queued", stage="waiting"), "x")
    assert "step 9 of 9" in progress_sentence(LayerJob("running", None, 12, 9, ""), "x")  # never past the end


def test_a_units_top_images_are_cropped_around_where_it_peaks(tiny_loaded):
    """The tiny model's pool layer (2x2 maps; fields 4x4 with a step of 2): each top image (by max) is cut to the
    4x4 field of the position where the unit is largest, found here from the layer's outputs themselves."""
    from app.views.features import unit_top_crops
    from tests.conftest import layer_outputs

    statistics = StatisticsCache()
    crops = unit_top_crops(statistics, tiny_loaded, "pool", 1, k=5)
    outputs = layer_outputs(tiny_loaded, "pool")[..., 1]  # [images, 2, 2]
    best = np.argsort(-outputs.reshape(len(outputs), -1).max(axis=1), kind="stable")[:5]
    np.testing.assert_array_equal(crops.indices, best)
    assert crops.field.size == (4, 4) and crops.crops.shape == (5, 4, 4, 1)
    for crop, index in zip(crops.crops, best, strict=True):
        row, col = divmod(int(outputs[index].argmax()), 2)
        np.testing.assert_array_equal(crop, tiny_loaded.images[index, 2 * row:2 * row + 4, 2 * col:2 * col + 4])
    whole = unit_top_crops(statistics, tiny_loaded, "hidden", 0, k=3)
    assert whole.field.whole and whole.crops.shape == (3, 6, 6, 1)
    np.testing.assert_array_equal(whole.crops, tiny_loaded.images[whole.indices])
