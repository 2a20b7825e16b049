"""Roles in headless chromium: a viewer logged in sees the training page without its controls, an editor with them;
without a login, an instance open to its network says writes are off instead.

Credentials reach every request of the page (its layout, dependencies, callbacks) through CDP's
``Network.setExtraHTTPHeaders``, as a browser that answered the Basic prompt would send them.
"""

from __future__ import annotations

import base64

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By
from werkzeug.security import generate_password_hash

from app.auth.gate import ANONYMOUS_WRITES_OFF
from app.ui.training_form import FIELD, PROBE_NOW, START, STOP
from tests.app_context import refresh_context

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
    refresh_context()
    from app.main import app

    yield app
    refresh_context()


def test_a_viewer_sees_the_training_page_without_its_controls_and_an_editor_with_them(dash_duo, login_app):
    from app.pages import train

    driver = dash_duo.driver
    log_in(driver, "bob", "builder-bob-9")
    dash_duo.start_server(login_app, port=8055)
    url = f"{dash_duo.server_url}/train"
    dash_duo.wait_for_page(url=url)
    dash_duo.wait_for_contains_text(f"#{train.READ_ONLY}", "Signed in as bob (viewer)", timeout=10)
    dash_duo.wait_for_contains_text(f"#{train.STATUS}", "No training job yet", timeout=10)  # watching still works
    for control in (f"#{START}", f"#{STOP}", f"#{PROBE_NOW}", f"#{FIELD['name']}"):
        assert not dash_duo.find_element(control).is_displayed(), control

    log_in(driver, "alice", "wonderland-7")
    dash_duo.wait_for_page(url=url)
    dash_duo.wait_for_element(f"#{START}", timeout=10)
    until(lambda: dash_duo.find_element(f"#{START}").is_displayed(), 5)
    assert dash_duo.find_elements(f"#{train.READ_ONLY}") == []


@pytest.fixture
def exposed_app(app_store, tmp_path, monkeypatch):
    """The app as ``HOST=0.0.0.0 make run`` serves it: no login, no opt-in to anonymous writes."""
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    for key in ("AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY", "REDIS_URL", "ALLOWED_HOSTS", "ALLOW_ANONYMOUS_WRITES"):
        monkeypatch.delenv(key, raising=False)
    refresh_context()
    from app.main import app

    yield app
    refresh_context()


def test_an_instance_open_to_its_network_without_a_login_says_writes_are_off_and_offers_no_start(dash_duo,
                                                                                                  exposed_app):
    from app.pages import train

    driver = dash_duo.driver
    dash_duo.start_server(exposed_app, port=8093)
    for width, height in ((1400, 1000), (800, 1000)):
        driver.set_window_size(width, height)
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/train")
        dash_duo.wait_for_contains_text(f"#{train.READ_ONLY}", "Writes are off", timeout=10)
        dash_duo.wait_for_contains_text(f"#{train.STATUS}", "No training job yet", timeout=10)  # watching works

        note = dash_duo.find_element(f"#{train.READ_ONLY}")
        assert note.text == ANONYMOUS_WRITES_OFF  # the whole note, as it reads on the screen
        viewport = driver.execute_script("return window.innerHeight")
        assert note.is_displayed() and note.rect["y"] + note.rect["height"] <= viewport, width  # seen at once
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "Start training" not in page and "configure one and start it" not in page
        shown_buttons = [button.text for button in driver.find_elements(By.TAG_NAME, "button")
                         if button.is_displayed()]
        assert not any("Start" in text or "Stop" in text for text in shown_buttons), shown_buttons
        assert not dash_duo.find_element(f"#{START}").is_displayed()
