"""Roles in headless chromium: a viewer logged in sees the training page without its controls, an editor with them.

Credentials reach every request of the page (its layout, dependencies, callbacks) through CDP's
``Network.setExtraHTTPHeaders``, as a browser that answered the Basic prompt would send them.
"""

from __future__ import annotations

import base64

import pytest
from dash.testing.wait import until
from werkzeug.security import generate_password_hash

from app import services

FAST = "pbkdf2:sha256:1000"


def log_in(driver, user: str, password: str) -> None:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})


@pytest.fixture
def login_app(app_store, tmp_path, monkeypatch):
    users = tmp_path / "users"
    users.write_text(f"alice:{generate_password_hash('wonderland-7', FAST)}:editor\n"
                     f"bob:{generate_password_hash('builder-bob-9', FAST)}:viewer\n")
    monkeypatch.setenv("AUTH_USERS_FILE", str(users))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("AUTH_USERS", raising=False)
    monkeypatch.delenv("READ_ONLY", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    services.reset()
    from app.main import app

    yield app
    services.reset()


def test_a_viewer_sees_the_training_page_without_its_controls_and_an_editor_with_them(dash_duo, login_app):
    driver = dash_duo.driver
    log_in(driver, "bob", "builder-bob-9")
    dash_duo.start_server(login_app, port=8055)
    url = f"{dash_duo.server_url}/train"
    dash_duo.wait_for_page(url=url)
    dash_duo.wait_for_contains_text("#train-read-only", "Signed in as bob (viewer)", timeout=10)
    dash_duo.wait_for_contains_text("#train-status", "No training job yet", timeout=10)  # watching still works
    for control in ("#train-start", "#train-stop", "#train-probe-now", "#train-name"):
        assert not dash_duo.find_element(control).is_displayed(), control

    log_in(driver, "alice", "wonderland-7")
    dash_duo.wait_for_page(url=url)
    dash_duo.wait_for_element("#train-start", timeout=10)
    until(lambda: dash_duo.find_element("#train-start").is_displayed(), 5)
    assert dash_duo.find_elements("#train-read-only") == []
