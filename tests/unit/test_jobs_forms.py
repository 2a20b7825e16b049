"""The training form's parsing, the CLI's option merging and the training figures: pure functions, tiny inputs."""

from __future__ import annotations

import argparse

import pytest

from app.jobs.forms import (
    config_from_form,
    default_form,
    next_free_name,
    parse_int_list,
    probe_layer_options,
    validate_form,
)
from app.train import build_parser, config_from_args
from app.train_figures import EMPTY_NOTE, learning_rate_curve, training_curves


def test_default_form_is_the_blogs_run_and_valid():
    values = default_form()
    assert values["filters"] == "32, 64, 128" and values["kernels"] == "3" and values["dense_units"] == "100"
    assert (values["optimizer"], values["momentum"], values["lr_schedule"]) == ("rmsprop", 0.8, "power")
    raw, errors = validate_form(values)
    assert errors == []
    assert [layer["filters"] for layer in raw["conv_layers"]] == [32, 64, 128]
    assert raw["max_train"] is None and raw["probe_image"] == 0 and raw["probe_layer"] == "Conv2D_1"


def test_form_lists_kernels_and_path_override():
    values = {**default_form(), "filters": "8 16,32", "kernels": "5, 3, 3", "dense_units": "",
              "dataset_path": " /data/x.npz ", "epochs": 4.0, "max_train": 500.0}
    raw, errors = config_from_form(values)
    assert errors == []
    assert [(c["filters"], c["kernel"]) for c in raw["conv_layers"]] == [(8, 5), (16, 3), (32, 3)]
    assert raw["dense_layers"] == [] and raw["dataset"] == "/data/x.npz"
    assert raw["epochs"] == 4 and isinstance(raw["epochs"], int) and raw["max_train"] == 500


def test_form_reports_every_problem_with_the_field_name():
    values = {**default_form(), "filters": "8, x", "kernels": "3, 3, 3", "epochs": None, "name": "../evil",
              "batch_size": 0}
    _raw, errors = config_from_form(values)
    assert any(e.startswith("Conv filters") for e in errors)
    assert any("epochs is required" in e for e in errors)
    _raw, errors = validate_form({**default_form(), "kernels": "3, 3", "name": "../evil", "batch_size": 0})
    assert any("Kernel sizes" in e for e in errors)
    _raw, errors = validate_form({**default_form(), "name": "../evil", "batch_size": 0, "epochs": 0})
    assert any("invalid model name" in e for e in errors)
    assert any("batch_size must be between" in e for e in errors)
    assert any("epochs must be between 1 and 500" in e for e in errors)


def test_parse_int_list():
    errors: list[str] = []
    assert parse_int_list("1, 2 3", "x", errors) == [1, 2, 3] and errors == []
    assert parse_int_list("", "x", errors, allow_empty=True) == [] and errors == []
    assert parse_int_list("", "x", errors) == [] and len(errors) == 1


def test_probe_layer_options_follow_the_architecture():
    assert probe_layer_options("8, 16", 2, "16") == ["Conv2D_1", "Max_Pool_1", "Conv2D_2", "Flatten", "Dense_1",
                                                      "Dense_2"]
    assert probe_layer_options("8", 0, "") == ["Conv2D_1", "Flatten", "Dense_1"]
    assert probe_layer_options("junk", "x", "") == ["Conv2D_1", "Flatten", "Dense_1"]


def test_next_free_name():
    assert next_free_name("my-cnn", set()) == "my-cnn"
    assert next_free_name("my-cnn", {"my-cnn", "my-cnn-2"}) == "my-cnn-3"


def test_cli_options_override_the_config_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"name": "from-file", "epochs": 7, "conv_layers": [{"filters": 4, "kernel": 5}]}')
    args = build_parser().parse_args(["--config", str(path), "--epochs", "2", "--filters", "8,16", "--dense", "",
                                      "--probe-image", "3"])
    raw = config_from_args(args)
    assert raw["name"] == "from-file" and raw["epochs"] == 2 and raw["probe_image"] == 3
    assert raw["conv_layers"] == [{"filters": 8, "kernel": 5, "activation": "relu"},
                                  {"filters": 16, "kernel": 3, "activation": "relu"}]
    assert raw["dense_layers"] == []
    assert config_from_args(build_parser().parse_args([])) == {}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--filters", "8,x"])
    assert isinstance(build_parser().parse_args([]), argparse.Namespace)


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
    assert "range" not in empty["layout"]["xaxis"]
