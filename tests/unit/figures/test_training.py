"""The training page's curves, checked on their traces."""

from __future__ import annotations

import pytest

from app.figures.training import EMPTY_NOTE, learning_rate_curve, training_curves


def test_training_curves_have_four_traces_over_the_epochs():
    rows = [{"epoch": e, "loss": 1 / e, "val_loss": 1.1 / e, "accuracy": 0.5 + e / 10, "val_accuracy": 0.5,
             "learning_rate": 0.001 / e} for e in (1, 2, 3)]
    figure = training_curves(rows, epochs_total=20, title="t")
    assert [trace["name"] for trace in figure["data"]] == ["loss", "val_loss", "accuracy", "val_accuracy"]
    assert [trace["xaxis"] for trace in figure["data"]] == ["x", "x", "x2", "x2"]
    assert figure["data"][0]["x"] == [1, 2, 3] and figure["data"][1]["y"][2] == pytest.approx(1.1 / 3)
    assert figure["layout"]["xaxis"]["range"] == figure["layout"]["xaxis2"]["range"] == [0.5, 20.5]
    assert EMPTY_NOTE not in str(figure["layout"]["annotations"])
    rate = learning_rate_curve(rows, 20)
    assert rate["data"][0]["y"] == [0.001, 0.0005, pytest.approx(0.001 / 3)]
    empty = training_curves([])
    assert empty["data"][0]["x"] == [] and EMPTY_NOTE in str(empty["layout"]["annotations"])
    assert not empty["layout"]["xaxis"]["visible"] and not empty["layout"]["yaxis"]["visible"]
