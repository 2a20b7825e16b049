"""app.core.statistics.StatisticsCache: class means, top images and dead units checked against numpy on a Keras
sub-model's outputs, computed once per model version and layer, and refusing bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.activations import LayerNotFound
from app.core.errors import InvalidInput
from app.core.statistics import StatisticsCache
from app.core.units import MAX_TOP_K
from tests.conftest import layer_outputs

LAYERS = ("conv", "pool", "flat", "hidden", "output")


def unit_scores(outputs: np.ndarray, by: str) -> np.ndarray:
    """[N, units]: the mean or max of each map, the value itself for nodes."""
    if outputs.ndim == 2:
        return outputs
    flat = outputs.reshape(len(outputs), -1, outputs.shape[-1])
    return flat.mean(axis=1) if by == "mean" else flat.max(axis=1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from app.core.store import ModelStore
    from tests.conftest import fill_tiny_store

    return ModelStore(fill_tiny_store(tmp_path_factory.mktemp("stats") / "store")).get("tiny")


@pytest.mark.parametrize("layer", LAYERS)
def test_class_means_equal_numpy_means_of_the_layers_outputs_per_class(loaded, layer):
    outputs = layer_outputs(loaded, layer)
    result = StatisticsCache().class_means(loaded, layer)
    assert result.layer == layer
    assert result.means.shape == (3, *outputs.shape[1:])
    for c in range(3):
        chosen = loaded.labels == c
        assert result.counts[c] == chosen.sum() == 8
        np.testing.assert_allclose(result.means[c], outputs[chosen].mean(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("by", ["mean", "max"])
@pytest.mark.parametrize("layer", ["conv", "hidden"])
def test_top_images_are_the_images_with_the_highest_unit_scores(loaded, layer, by):
    scores = unit_scores(layer_outputs(loaded, layer), by)
    stats = StatisticsCache()
    for unit in range(scores.shape[1]):
        indices, values = stats.top_images(loaded, layer, unit, k=5, by=by)
        assert len(indices) == 5 and len(set(indices.tolist())) == 5
        np.testing.assert_allclose(values, np.sort(scores[:, unit])[::-1][:5], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values, scores[indices, unit], rtol=1e-5, atol=1e-6)


def test_top_images_ranks_every_test_image_and_refuses_more_than_there_are(loaded):
    stats = StatisticsCache()
    indices, values = stats.top_images(loaded, "output", 0, k=24)
    assert sorted(indices.tolist()) == list(range(len(loaded.images)))
    assert np.all(np.diff(values) <= 0)
    with pytest.raises(InvalidInput, match="between 1 and 24"):
        stats.top_images(loaded, "output", 0, k=25)


def test_is_dead_says_whether_a_unit_is_zero_on_every_test_image(loaded):
    stats = StatisticsCache()
    for layer in ("conv", "hidden"):
        outputs = layer_outputs(loaded, layer)
        peaks = np.abs(outputs).reshape(-1, outputs.shape[-1]).max(axis=0)
        assert [stats.is_dead(loaded, layer, u) for u in range(len(peaks))] == [bool(p == 0) for p in peaks]


def test_results_are_computed_once_per_layer_and_again_after_clear(loaded):
    stats = StatisticsCache()
    means = stats.class_means(loaded, "conv")
    top = stats.top_units(loaded, "conv")
    assert stats.class_means(loaded, "conv") is means and stats.top_units(loaded, "conv") is top
    assert stats.top_units(loaded, "conv", by="max") is not top
    assert stats.class_means(loaded, "hidden") is not means
    stats.clear()
    again = stats.class_means(loaded, "conv")
    assert again is not means
    np.testing.assert_array_equal(again.means, means.means)


def test_a_cache_of_one_entry_keeps_only_the_latest_layer(loaded):
    stats = StatisticsCache(maxsize=1)
    conv = stats.class_means(loaded, "conv")
    stats.class_means(loaded, "hidden")
    assert stats.class_means(loaded, "conv") is not conv


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s, m: s.class_means(m, "nope"), LayerNotFound),
        (lambda s, m: s.top_units(m, "nope"), LayerNotFound),
        (lambda s, m: s.top_units(m, "conv", by="median"), InvalidInput),
        (lambda s, m: s.top_images(m, "conv", 0, k=0), InvalidInput),
        (lambda s, m: s.top_images(m, "conv", 0, k=MAX_TOP_K + 1), InvalidInput),
        (lambda s, m: s.top_images(m, "conv", 2), InvalidInput),
        (lambda s, m: s.top_images(m, "conv", -1), InvalidInput),
        (lambda s, m: s.is_dead(m, "hidden", 4), InvalidInput),
    ],
)
def test_bad_layers_units_k_and_ranking_are_refused(loaded, call, error):
    with pytest.raises(error):
        call(StatisticsCache(), loaded)


def test_dead_units_as_a_side_note_are_computed_only_when_cheap_or_already_known(loaded):
    layer = loaded.engine.layers[0].name
    over_the_test_set = loaded.cost.flops * loaded.engine.n_images
    statistics = StatisticsCache(in_request_flops=over_the_test_set - 1)
    assert statistics.dead_units_if_cheap(loaded, layer) is None
    assert len(statistics._top) == 0  # refused before any work
    statistics.in_request_flops = over_the_test_set
    cheap = statistics.dead_units_if_cheap(loaded, layer)
    outputs = layer_outputs(loaded, layer)
    np.testing.assert_array_equal(cheap, (outputs.reshape(len(outputs), -1, outputs.shape[-1]) == 0).all(axis=(0, 1)))
    # known now: given whatever the budget
    statistics.in_request_flops = 0
    np.testing.assert_array_equal(statistics.dead_units_if_cheap(loaded, layer), cheap)


def test_every_kind_of_statistic_reads_back_as_it_was_written_and_a_torn_file_reads_as_none(loaded, tmp_path):
    from app.core.statistics import load_statistic, save_statistic

    layer = loaded.engine.layers[0].name
    statistics = StatisticsCache()
    values = {"top-mean": statistics.top_units(loaded, layer), "top-max": statistics.top_units(loaded, layer, "max"),
              "means": statistics.class_means(loaded, layer), "distances": statistics.class_distances(loaded, layer),
              "range": statistics.layer_range(loaded, layer)}
    for kind, value in values.items():
        path = tmp_path / f"{kind}.npz"
        save_statistic(path, kind, value)
        back = load_statistic(path, kind)
        if kind.startswith("top-"):
            for field in ("indices", "values", "peaks", "positions"):
                np.testing.assert_array_equal(getattr(back, field), getattr(value, field))
            assert (back.layer, back.by) == (value.layer, value.by)
        elif kind == "means":
            np.testing.assert_array_equal(back.means, value.means)
            np.testing.assert_array_equal(back.counts, value.counts)
        else:
            assert np.array_equal(np.asarray(back), np.asarray(value))
        path.write_bytes(path.read_bytes()[:100])
        assert load_statistic(path, kind) is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    assert load_statistic(tmp_path / "absent.npz", "means") is None


def test_a_still_computing_note_is_told_apart_from_an_error_and_says_how_far():
    import json

    from app.core.errors import StillComputing
    from app.core.statistics import progress_sentence
    from app.jobs.background import LayerJob
    from app.ui.components import error_alert, is_still_computing

    job = LayerJob("running", done=250, total=1000, started=100.0)
    assert job.seconds_left(now=110.0) == 30.0
    sentence = progress_sentence("the class means", "Conv1", 10_000, job)
    assert sentence.startswith("Computing the class means of Conv1 over 10,000 test images in the background: 25%")
    note = json.loads(json.dumps(error_alert(StillComputing(sentence, job.progress())).to_plotly_json(),
                                 default=lambda component: component.to_plotly_json()))
    assert is_still_computing(note) and is_still_computing([None, {"props": {"children": note}}])
    error = json.loads(json.dumps(error_alert("Choose a model.").to_plotly_json(),
                                  default=lambda component: component.to_plotly_json()))
    assert not is_still_computing(error) and not is_still_computing(None)
