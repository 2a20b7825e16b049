"""Shared page helpers: the model choice a page opens on, and query strings that reopen a view."""

from app import services, ui


def test_choose_model_prefers_request_then_bundled_and_explains(app_store):
    options, chosen, alerts = ui.choose_model("tiny")
    assert chosen == "tiny" and alerts == []
    disabled = {option["value"] for option in options if option["disabled"]}
    assert disabled == {"corrupt", "no-test-set", "empty"}
    _, chosen, alerts = ui.choose_model("absent")
    assert chosen == "mnist-cnn" and "'absent' is not available" in str(alerts[0].children)


def test_choose_model_on_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_STORE", str(tmp_path))
    services.reset()
    try:
        options, chosen, alerts = ui.choose_model(None)
    finally:
        services.reset()
    assert options == [] and chosen is None and "No usable model" in str(alerts[0].children)


def test_query_string_keeps_zero_and_drops_empty():
    assert ui.query_string({"image": 0, "a": None, "scale": False, "reverse": True, "cmap": ""}) == "?image=0&reverse=1"
