"""Browser test of the Models page: upload a model with its test set, read its compatibility report, delete it
after confirming (headless Debian chromium via dash_duo)."""

from __future__ import annotations

import keras
import numpy as np
from dash.testing.wait import until

from app.ui import model_admin
from tests.conftest import build_tiny_model, tiny_test_set

PORT = 8066


def test_upload_report_and_delete_in_the_browser(dash_duo, app_store, tmp_path):
    from app.main import app
    from app.pages import models

    keras.backend.clear_session()
    build_tiny_model().save(tmp_path / "my cnn.keras")
    images, labels = tiny_test_set()
    np.savez(tmp_path / "digits.npz", images=images, labels=labels)
    (tmp_path / "truncated.keras").write_bytes((tmp_path / "my cnn.keras").read_bytes()[:5000])

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/models")
    dash_duo.wait_for_element(f"#{model_admin.ROW}-tiny", timeout=20)
    dash_duo.find_element(f"#{model_admin.UPLOAD_NAME}").send_keys("from-browser")
    dash_duo.find_element(f"#{model_admin.UPLOAD_MODEL} input[type=file]").send_keys(str(tmp_path / "my cnn.keras"))
    dash_duo.find_element(f"#{model_admin.UPLOAD_TEST_SET} input[type=file]").send_keys(str(tmp_path / "digits.npz"))
    dash_duo.wait_for_text_to_equal(f"#{model_admin.UPLOAD_MODEL}-name", "my cnn.keras")
    dash_duo.wait_for_text_to_equal(f"#{model_admin.UPLOAD_TEST_SET}-name", "digits.npz")
    click(dash_duo, f"#{model_admin.UPLOAD_SUBMIT}")

    dash_duo.wait_for_element(f"#{model_admin.REPORT_TABLE}", timeout=30)
    assert dash_duo.driver.current_url.endswith("/models?model=from-browser&added=1")
    report = dash_duo.find_element(f"#{model_admin.REPORT_TABLE}").text
    for row in ("conv Conv2D 4×4×2 map grid", "pool MaxPooling2D 2×2×2 map grid", "output Dense 3 node grid"):
        assert row in report
    assert "passed every check" in dash_duo.find_element(f"#{models.REPORT_CARD}").text
    assert (app_store / "from-browser" / "model.keras").is_file()

    dash_duo.find_element(f"#{model_admin.UPLOAD_NAME}").send_keys("refused")
    dash_duo.find_element(f"#{model_admin.UPLOAD_MODEL} input[type=file]").send_keys(str(tmp_path / "truncated.keras"))
    dash_duo.find_element(f"#{model_admin.UPLOAD_TEST_SET} input[type=file]").send_keys(str(tmp_path / "digits.npz"))
    dash_duo.wait_for_text_to_equal(f"#{model_admin.UPLOAD_MODEL}-name", "truncated.keras")
    dash_duo.wait_for_text_to_equal(f"#{model_admin.UPLOAD_TEST_SET}-name", "digits.npz")
    click(dash_duo, f"#{model_admin.UPLOAD_SUBMIT}")
    dash_duo.wait_for_contains_text(f"#{model_admin.UPLOAD_MESSAGE}", "Not added (400): upload refused: cannot load",
                                    timeout=15)
    assert not (app_store / "refused").exists()

    click(dash_duo, f"#{model_admin.ROW}-from-browser button")
    until(lambda: _alert_text(dash_duo), 5)
    assert "Delete the model 'from-browser'" in _alert_text(dash_duo)
    dash_duo.driver.switch_to.alert.accept()
    dash_duo.wait_for_contains_text(f"#{model_admin.DELETE_MESSAGE}", "deleted", timeout=15)
    assert not (app_store / "from-browser").exists()
    assert not dash_duo.driver.find_elements("css selector", f"#{model_admin.ROW}-from-browser")
    expected_error = ("/api/models - Failed to load resource", "status of 400")
    unexpected = [entry for entry in dash_duo.get_logs()
                  if not all(part in entry["message"] for part in expected_error)]
    assert unexpected == []  # the refused upload's 400 is the one error the console may show


def _alert_text(dash_duo) -> str | None:
    try:
        return dash_duo.driver.switch_to.alert.text
    except Exception:  # no alert open yet
        return None


def click(dash_duo, selector: str) -> None:
    """Scroll an element into view and click it from script: while the page settles after a navigation (alerts
    fading in) selenium's pointer click can land on a neighbour."""
    element = dash_duo.find_element(selector)
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); arguments[0].click();", element)
