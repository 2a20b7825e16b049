"""The page frame's model choice and error reporting."""

from dash import no_update

from app.core.errors import NotFound, StillComputing
from app.ui.page import open_model, reports_errors
from tests.app_context import refresh_context


def test_open_model_prefers_request_then_bundled_and_explains(app_store):
    choice = open_model("tiny")
    assert choice.name == "tiny" and choice.loaded.name == "tiny" and choice.messages == []
    disabled = {option["value"] for option in choice.options if option["disabled"]}
    assert disabled == {"corrupt", "no-test-set", "empty"}
    choice = open_model("absent")
    assert choice.name == "mnist-cnn" and "'absent' is not available" in str(choice.messages[0].children)


def test_layer_choice_falls_back_with_a_notice(app_store):
    choice = open_model("mnist-cnn")
    options, value = choice.layer_choice("Conv2D_9", "Conv2D_3")
    assert value == "Conv2D_1" and "Conv2D_1" in [option["value"] for option in options]
    assert "'Conv2D_9' is not in 'mnist-cnn'" in str(choice.messages[-1].children)
    assert open_model("mnist-cnn").layer_choice(None, "Conv2D_3")[1] == "Conv2D_3"


def test_open_model_on_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_STORE", str(tmp_path))
    refresh_context()
    try:
        choice = open_model(None)
    finally:
        refresh_context()
    assert choice.options == [] and choice.name is None and choice.loaded is None
    assert "No usable model" in str(choice.messages[0].children)
    assert choice.layer_choice("Conv2D_1") == ([], None)


def test_reports_errors_turns_core_errors_into_the_last_output():
    @reports_errors(3)
    def failing(_value):
        raise NotFound("no layer 'x'")

    first, second, message = failing(1)
    assert first is no_update and second is no_update and "no layer 'x'" in str(message.children)

    @reports_errors(3, blank=([], None))
    def clearing(_value):
        raise NotFound("gone")

    assert clearing(1)[:2] == ([], None)
    assert reports_errors(2)(lambda value: (value, []))(5) == (5, [])


def test_while_a_job_computes_the_outputs_say_so_and_other_errors_still_blank_them():
    @reports_errors(3, blank=([], None), waiting=("computing", "computing"))
    def render(error):
        raise error

    running = StillComputing("class means of Conv2D_3 over 10,000 test images in the background: 40%",
                             {"status": "running"})
    first, second, message = render(running)
    assert (first, second) == ("computing", "computing") and "40%" in str(message.children)
    assert render(NotFound("gone"))[:2] == ([], None)
