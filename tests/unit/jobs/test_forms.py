"""The training form's parsing: pure functions, tiny inputs."""

from __future__ import annotations

from app.jobs.forms import (
    config_from_form,
    default_form,
    parse_int_list,
    probe_layer_options,
    validate_form,
)


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
