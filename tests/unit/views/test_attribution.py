"""The one orchestration of an attribution: the class resolved, the method and pixels checked, the same map as the
core's attribute() computes for that class."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import attribution
from app.core.attribution import GradientModelCache
from app.core.errors import InvalidInput
from app.views.attribution import PREDICTED, explain
from app.views.images import ImageRef, of_subject


@pytest.mark.parametrize("method", attribution.METHODS)
def test_the_predicted_class_is_explained_by_default_as_attribute_computes_it(tiny_loaded, method):
    gradients = GradientModelCache()
    image = of_subject(tiny_loaded, 5)
    explained = explain(tiny_loaded, gradients, image, method, PREDICTED, samples=4, steps=8)
    predicted = int(np.argmax(tiny_loaded.model.predict(tiny_loaded.images[5:6], verbose=0)[0]))
    assert explained.predicted == explained.target == predicted and explained.method == method
    direct = attribution.attribute(gradients.for_model(tiny_loaded), tiny_loaded.images[5], method, predicted,
                                   samples=4, steps=8)
    if method != "smoothgrad":  # SmoothGrad draws its noise afresh each time
        np.testing.assert_allclose(explained.result.map, direct.map, rtol=1e-5, atol=1e-7)
    assert explained.result.map.shape == direct.map.shape


def test_a_chosen_class_is_explained(tiny_loaded):
    explained = explain(tiny_loaded, GradientModelCache(), of_subject(tiny_loaded, 2), "gradient", 1)
    assert explained.target == 1


@pytest.mark.parametrize(("method", "target"), [("nope", PREDICTED), ("gradient", 3), ("gradient", -2)])
def test_an_unknown_method_or_class_is_refused(tiny_loaded, method, target):
    with pytest.raises(InvalidInput):
        explain(tiny_loaded, GradientModelCache(), of_subject(tiny_loaded, 0), method, target)


def test_pixels_that_are_not_all_finite_are_refused_before_any_gradient(tiny_loaded):
    pixels = tiny_loaded.images[0].copy()
    pixels[0, 0, 0] = np.nan
    with pytest.raises(InvalidInput, match="not finite"):
        explain(tiny_loaded, GradientModelCache(), ImageRef(0, pixels, 0), "gradient")
