"""Top images per unit, checked against a direct argsort over all test images."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.activations import LayerNotFound
from app.core.errors import InvalidInput
from app.core.statistics import StatisticsCache
from app.core.units import MAX_TOP_K, compute_top_units
from tests.conftest import layer_outputs


@pytest.mark.parametrize(("layer", "by"), [("conv", "mean"), ("conv", "max"), ("pool", "max"), ("hidden", "mean")])
@pytest.mark.parametrize("batch_size", [1, 5, 24])
def test_top_images_are_the_k_largest(tiny_loaded, layer, by, batch_size):
    outputs = layer_outputs(tiny_loaded, layer)
    axes = (1, 2) if outputs.ndim == 4 else ()
    direct = (outputs.mean(axis=axes) if by == "mean" else outputs.max(axis=axes)) if axes else outputs
    k = 7
    top = compute_top_units(tiny_loaded.engine, layer, k, by, batch_size=batch_size)
    for unit in range(direct.shape[1]):
        indices, values = top.unit(unit, k)
        expected_order = np.lexsort((np.arange(len(direct)), -direct[:, unit]))[:k]
        # values: exactly the k largest, best first; indices: the images that have them
        np.testing.assert_allclose(values, direct[expected_order, unit], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(direct[indices, unit], values, rtol=1e-5, atol=1e-6)
        assert len(set(indices.tolist())) == k
        if len(np.unique(np.round(direct[:, unit], 4))) == len(direct):  # no near-ties: the order is unique
            assert indices.tolist() == expected_order.tolist()


def test_top_images_rejects_bad_unit_k_and_by(tiny_loaded):
    with pytest.raises(InvalidInput, match="unit 2"):
        StatisticsCache().top_images(tiny_loaded, "conv", 2, 3)
    with pytest.raises(InvalidInput, match="k must"):
        StatisticsCache().top_images(tiny_loaded, "conv", 0, MAX_TOP_K + 1)
    with pytest.raises(InvalidInput, match="k must"):
        StatisticsCache().top_images(tiny_loaded, "conv", 0, 25)  # more than the 24 test images
    with pytest.raises(InvalidInput, match="'by'"):
        StatisticsCache().top_images(tiny_loaded, "conv", 0, 3, by="median")
    with pytest.raises(LayerNotFound):
        StatisticsCache().top_images(tiny_loaded, "nope", 0, 3)


def test_dead_units_are_those_zero_on_every_test_image_tiny(tiny_loaded):
    for layer in ("conv", "pool", "hidden"):
        outputs = layer_outputs(tiny_loaded, layer)
        top = compute_top_units(tiny_loaded.engine, layer, 3, batch_size=5)
        expected = [bool(np.all(outputs[..., unit] == 0)) for unit in range(outputs.shape[-1])]
        assert [top.is_dead(unit) for unit in range(top.n_units)] == expected
    with pytest.raises(InvalidInput, match="unit 4 is out of range"):
        top.is_dead(4)  # "hidden" has units 0-3


def test_mnist_dense_1_has_dead_units_found_exactly(app_store):
    from tests.app_context import served_context

    loaded = served_context().store.get("mnist-cnn")
    outputs = layer_outputs(loaded, "Dense_1")
    expected = np.flatnonzero(np.all(outputs == 0, axis=0)).tolist()
    assert expected, "the bundled model's Dense_1 is known to have units that never fire"
    statistics = StatisticsCache()
    found = [unit for unit in range(outputs.shape[1]) if statistics.is_dead(loaded, "Dense_1", unit)]
    assert found == expected
    # the ranking of a dead unit is all zeros: exactly what the panel must not present as "top images"
    _, values = statistics.top_images(loaded, "Dense_1", expected[0], 3)
    assert values.tolist() == [0.0, 0.0, 0.0]
