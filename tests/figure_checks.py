"""Checks of figures shared by the unit and integration tests."""

import numpy as np

from app.figures.grids import COLOUR_LEVELS, heatmap_values


def assert_codes_stand_for(trace: dict, expected: np.ndarray) -> None:
    """A heatmap sent as colour codes shows ``expected``: each code within half a step of its value, padding NaN."""
    assert trace["z"]["dtype"] == "u1" and trace["meta"]["levels"] == COLOUR_LEVELS
    low, high = trace["meta"]["range"]
    half_step = (high - low) / COLOUR_LEVELS / 2
    np.testing.assert_allclose(heatmap_values(trace), expected, rtol=0, atol=half_step * (1 + 1e-6))
