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


def test_an_epoch_cut_short_is_a_dotted_hollow_point_at_the_place_reached_not_a_full_epoch():
    rows = [{"epoch": e, "loss": 1 / e, "val_loss": 1.1 / e, "accuracy": 0.5 + e / 10, "val_accuracy": 0.5,
             "learning_rate": 0.001 / e, "batches": 8, "batches_per_epoch": 8, "partial": False} for e in (1, 2)]
    rows.append({"epoch": 3, "loss": 0.4, "val_loss": 0.45, "accuracy": 0.7, "val_accuracy": 0.6,
                 "learning_rate": 0.0003, "batches": 2, "batches_per_epoch": 8, "partial": True})
    figure = training_curves(rows, epochs_total=5)
    main, partial = figure["data"][:4], figure["data"][4:]
    assert all(trace["x"] == [1, 2] for trace in main)  # the full epochs only
    assert [trace["name"] for trace in partial] == ["loss (partial epoch)", "val_loss (partial epoch)",
                                                    "accuracy (partial epoch)", "val_accuracy (partial epoch)"]
    loss = partial[0]
    assert loss["x"] == [2.0, 2.25] and loss["y"] == [0.5, 0.4]  # from epoch 2 to a quarter into epoch 3
    assert loss["line"]["dash"] == "dot" and loss["marker"]["symbol"][-1] == "circle-open"
    assert loss["text"][-1] == "epoch 3, partial: 2 of 8 batches" and not loss["showlegend"]
    assert [trace["xaxis"] for trace in partial] == ["x", "x", "x2", "x2"]
    rate = learning_rate_curve(rows, 5)
    assert rate["data"][0]["x"] == [1, 2] and rate["data"][1]["x"] == [2.0, 2.25]
    assert "partial" in rate["data"][1]["text"][-1]
    only_cut = training_curves(rows[2:], 5)  # stopped inside the first epoch: just the hollow point
    assert only_cut["data"][0]["x"] == [] and only_cut["data"][4]["x"] == [2.25]
    assert len(training_curves(rows[:2], 5)["data"]) == 4  # no cut epoch, no extra trace


def test_a_constant_learning_rate_is_drawn_on_an_axis_around_it_not_around_zero():
    row = {"epoch": 1, "loss": 0.3, "val_loss": 0.2, "accuracy": 0.9, "val_accuracy": 0.9, "learning_rate": 0.001}
    axis = learning_rate_curve([row], 20)["layout"]["yaxis"]
    low, high = axis["range"]
    assert low < 0.001 < high and not axis["autorange"]
    assert low > 0 and high < 0.01  # the rate's own scale: 0.001 cannot read as 0
    assert (high - 0.001) == pytest.approx(0.001 - low)  # centred on the rate
    # float32 records of one rate (0.0010000000474974513) are still one value
    again = learning_rate_curve([row, {**row, "epoch": 2, "learning_rate": 0.0010000000474974513}], 20)
    assert again["layout"]["yaxis"]["range"] == pytest.approx([0.0005, 0.0015])
    # a rate that changes: Plotly's own range spans it, and a redraw drops the range of the constant rate
    decayed = learning_rate_curve([row, {**row, "epoch": 2, "learning_rate": 0.0005}], 20)["layout"]["yaxis"]
    assert "range" not in decayed and decayed["autorange"] is True
    assert "range" not in learning_rate_curve([], 20)["layout"]["yaxis"]
