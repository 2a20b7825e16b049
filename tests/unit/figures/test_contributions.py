"""The MLP view's charts: A and B on one colour scale centred on 0, A − B, titles clear of the mode bar."""

from __future__ import annotations

import numpy as np

from app.core.contributions import Contributions
from app.figures.codec import decode_array
from app.figures.contributions import contribution_figures
from tests.unit.figures.test_titles import modebar_overlaps


def _contributions(classes=(4, 9)) -> Contributions:
    parts = np.random.default_rng(0).normal(size=(2, 100)).astype(np.float32)
    return Contributions("Dense_1", "Dense_2", 12, classes, np.ones(100, np.float32), parts, np.zeros(2),
                         parts.sum(axis=1), np.zeros(10))


def test_a_and_b_share_a_scale_centred_on_zero_and_the_difference_is_a_minus_b():
    result = _contributions()
    a, b, difference = contribution_figures(result, ("class 4", "class T-shirt/top of a long name"))
    assert a["data"][0]["zmin"] == b["data"][0]["zmin"] == -a["data"][0]["zmax"] and a["data"][0]["zmid"] == 0
    np.testing.assert_allclose(decode_array(a["data"][0]["z"]), result.contributions[0].reshape(10, 10))
    np.testing.assert_allclose(decode_array(difference["data"][0]["z"]), result.difference.reshape(10, 10),
                               rtol=1e-6)
    assert a["layout"]["title"]["text"] == "contributions to class 4"
    assert "<br>" in b["layout"]["title"]["text"]  # too long for a third of an 800 px window: two lines
    assert all(modebar_overlaps(figure["layout"]) == [] for figure in (a, b, difference))


def test_the_same_class_twice_says_why_the_difference_is_blank():
    *_, difference = contribution_figures(_contributions((4, 4)), ("class 4", "class 4"))
    assert difference["data"] == [] and "both class 4" in difference["layout"]["annotations"][0]["text"]
