"""The training form's parsing: pure functions, tiny inputs."""

from __future__ import annotations

import pytest

from app.core.training import parse_config
from app.views.train_form import (
    check_form,
    config_from_form,
    default_form,
    form_from_config,
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
    for text in ("32, １", "1_0", "64 ٣", "9" * 19):  # what int() takes but a whole number in a form is not
        assert parse_int_list(text, "x", errors) == [] and errors[-1].endswith("is not a list of whole numbers")


def test_probe_layer_options_follow_the_architecture():
    assert probe_layer_options("8, 16", 2, "16") == ["Conv2D_1", "Max_Pool_1", "Conv2D_2", "Flatten", "Dense_1",
                                                      "Dense_2"]
    assert probe_layer_options("8", 0, "") == ["Conv2D_1", "Flatten", "Dense_1"]
    assert probe_layer_options("junk", "x", "") == ["Conv2D_1", "Flatten", "Dense_1"]


# one bad value per field, each caught by a different check (the form's own, parse_config's, the size checks)
BAD_FIELD_VALUES = {
    "name": "../evil", "epochs": 0, "dataset": "", "dataset_path": "x" * 400, "filters": "0", "kernels": "0",
    "conv_activation": "swish", "pool_size": 9, "dense_units": "0", "dense_activation": "swish", "regularizer": "l3",
    "regularizer_factor": 5, "optimizer": "sgdx", "momentum": 2, "lr_schedule": "cosine", "learning_rate": 5,
    "decay_steps": 0, "decay_rate": -1, "batch_size": 0, "max_train": 5, "max_test": 5, "seed": -1,
    "probe_image": -1, "probe_layer": "x" * 100,
}


def test_every_field_has_a_bad_value_and_its_problem_names_that_field():
    assert set(BAD_FIELD_VALUES) == set(default_form())
    for key, bad in BAD_FIELD_VALUES.items():
        values = {**default_form(), key: bad}
        if key == "dataset":
            values["dataset_path"] = ""
        check = check_form(values)
        assert check.invalid == {key}, (key, check.problems)
        assert len(check.errors) == 1, (key, check.errors)


def test_every_problem_of_a_form_is_reported_at_once_each_once():
    values = {**default_form(), "filters": "8, x", "epochs": None, "name": "../evil", "batch_size": 0,
              "momentum": 2, "conv_activation": "swish"}
    check = check_form(values)
    assert check.invalid == {"filters", "epochs", "name", "batch_size", "momentum", "conv_activation"}
    assert len(check.errors) == 6  # a blank epochs field is "required", not also "must be an integer"
    assert any("epochs is required" in e for e in check.errors)
    # a field the page already found unreadable is not reported again
    assert "epochs" not in check_form(values, skip=frozenset({"epochs"})).invalid


def test_a_configuration_that_cannot_be_built_on_a_named_datasets_images_is_refused_by_the_form():
    too_pooled = {**default_form(), "filters": "8, 8, 8, 8, 8, 8", "kernels": "1", "pool_size": 2}
    check = check_form(too_pooled)
    assert check.invalid == {"pool_size"}
    assert check.errors == ["pooling after conv layer 5 leaves no pixels: 1×1 pooled by 2 is 0×0; use fewer conv "
                            "layers, a smaller pool or none"]
    assert check_form({**too_pooled, "filters": "8, 8, 8, 8, 8"}).errors == []  # 28 14 7 3 1 still fits
    too_wide = check_form({**default_form(), "filters": "8, 8, 8, 8", "kernels": "3"})  # 26 13 11 5 3 1, then 3x3
    assert too_wide.invalid == {"kernels"} and too_wide.errors[0].startswith("conv layer 4 (kernel 3) leaves no")
    # a dataset given by path: its image size is known only once loaded (the worker checks it then)
    assert check_form({**too_pooled, "dataset_path": "digits.npz"}).errors == []


def test_a_run_over_the_jobs_budget_is_refused_by_the_form_as_a_whole():
    hostile = {**default_form(), "filters": "512, 512, 512, 512", "kernels": "1", "pool_size": 0,
               "dense_units": "4096"}
    check = check_form(hostile)
    assert check.errors and any("parameters, the cap is 5,000,000" in e for e in check.errors)
    assert check.invalid == set()  # about the run as a whole, no single field


@pytest.mark.parametrize("raw", [
    {},  # the blog's run
    {"name": "x2", "dataset": "fashion-mnist", "conv_layers": [{"filters": 8, "kernel": 5}, {"filters": 16}],
     "pool_size": 0, "dense_layers": [], "optimizer": "adam", "lr_schedule": "none", "epochs": 3, "max_train": 500,
     "max_test": 100, "probe_image": None, "probe_layer": None, "seed": 7},
    {"name": "by-path", "dataset": "my-digits.npz", "conv_layers": [{"filters": 4, "activation": "tanh"}],
     "dense_layers": [{"units": 32, "activation": "elu"}, {"units": 16, "activation": "elu"}],
     "regularizer": "l1", "regularizer_factor": 0.01, "probe_image": 4, "probe_layer": "Flatten"},
])
def test_a_stored_configuration_fills_the_form_and_reads_back_the_same(raw):
    config = parse_config(raw).to_dict()
    values = form_from_config(config)
    assert set(values) == set(default_form())
    back, errors = config_from_form(values)
    assert errors == [] and parse_config(back).to_dict() == config


def test_the_probe_image_field_takes_a_number_or_a_drawn_images_id():
    from app.views.train_form import probe_image_value

    own = "u:0123456789abcdef0123"
    assert [probe_image_value(value) for value in (" 3 ", 4, 5.0, "", None, f" {own}")] == [3, 4, 5, None, None, own]
    assert probe_image_value("１") == "１"  # passed on: parse_config names it
    for value, wanted in ((own, own), ("7", 7)):
        raw, errors = config_from_form({**default_form(), "probe_image": value})
        assert errors == [] and parse_config(raw).probe_image == wanted
    check = check_form({**default_form(), "probe_image": "u:xyz"})
    assert check.problems == [("probe_image", "probe_image 'u:xyz' is not an image id (u: and 20 hex digits)")]
