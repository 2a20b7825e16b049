"""Limits on password guessing through the real app: failed logins per client address and per account, the CPU
ration of password checks, and what they never do (hold up credentials already found good)."""

from __future__ import annotations

import base64
import shutil
import time

import pytest
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth import gate as auth
from tests.app_context import refresh_context, served_context
from tests.conftest import BUNDLED_MODEL

FAST = "pbkdf2:sha256:1000"
VIEW = "/api/models/mnist-cnn/predict?image=1"


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def login_app(tmp_path, monkeypatch):
    """The app with a viewer and an editor (cheap hashes: the counters are under test here), limits of 3 failures
    per client and 5 per account; the number of password checks made is counted."""
    shutil.copytree(BUNDLED_MODEL, tmp_path / "store" / "mnist-cnn")
    users = tmp_path / "users"
    users.write_text(f"vic:{generate_password_hash('viewer-pass-1', FAST)}:viewer\n"
                     f"ed:{generate_password_hash('editor-pass-1', FAST)}:editor\n")
    for key, value in {"MODEL_STORE": tmp_path / "store", "STATE_DIR": tmp_path / "state", "AUTH_USERS_FILE": users,
                       "LOGIN_FAILURES_PER_CLIENT": 3, "LOGIN_FAILURES_PER_ACCOUNT": 5,
                       "LOGIN_LOCKOUT_SECONDS": 120}.items():
        monkeypatch.setenv(key, str(value))
    for key in ("AUTH_USERS", "REDIS_URL", "READ_ONLY", "PROXY_HOPS"):
        monkeypatch.delenv(key, raising=False)
    checks = []
    real_check = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda *a: checks.append(1) or real_check(*a))
    refresh_context()
    from app.main import server

    yield server.test_client(), checks, monkeypatch
    refresh_context()


def get(client, headers: dict, address: str = "10.0.0.1", path: str = VIEW):
    return client.get(path, headers=headers, environ_base={"REMOTE_ADDR": address})


def test_a_client_over_its_failures_is_refused_without_a_password_check(login_app):
    client, checks, _ = login_app
    assert get(client, basic("vic", "viewer-pass-1")).status_code == 200  # logged in before the guessing
    for attempt in range(3):
        assert get(client, basic("ed", f"guess-{attempt}")).status_code == 401
    assert len(checks) == 4
    refused = get(client, basic("ed", "guess-3"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 120
    assert get(client, basic("ed", "editor-pass-1")).status_code == 429  # even the right password, from there
    assert len(checks) == 4  # refused before any hash
    assert get(client, basic("vic", "viewer-pass-1")).status_code == 200  # remembered: never held up
    assert get(client, basic("ed", "editor-pass-1"), address="10.0.0.2").status_code == 200  # another client


def test_an_account_under_attack_takes_no_new_login_but_keeps_its_logged_in_browsers(login_app):
    client, checks, _ = login_app
    assert get(client, basic("ed", "editor-pass-1"), address="10.1.1.1").status_code == 200
    for attempt in range(5):
        assert get(client, basic("ed", f"guess-{attempt}"), address=f"10.0.0.{attempt}").status_code == 401
    assert get(client, basic("ed", "editor-pass-2"), address="10.0.0.99").status_code == 429
    assert get(client, basic("ed", "editor-pass-1"), address="10.1.1.1").status_code == 200  # remembered
    assert get(client, basic("vic", "viewer-pass-1"), address="10.0.0.99").status_code == 200  # other accounts


def test_unknown_names_are_limited_as_known_ones_are(login_app):
    client, _, _ = login_app
    answers = {name: [get(client, basic(name, f"guess-{n}"), address=f"10.2.{i}.{n}").status_code
                      for n in range(7)] for i, name in enumerate(("ed", "nobody"))}
    assert answers["ed"] == answers["nobody"] == [401] * 5 + [429] * 2


def test_the_client_behind_a_proxy_is_read_from_x_forwarded_for(login_app):
    client, _, monkeypatch = login_app
    monkeypatch.setenv("PROXY_HOPS", "1")
    refresh_context()
    proxy = "127.0.0.1"
    for attempt in range(3):
        headers = {**basic("ed", f"guess-{attempt}"), "X-Forwarded-For": "198.51.100.7"}
        assert get(client, headers, address=proxy).status_code == 401
    guesser = {**basic("ed", "guess-9"), "X-Forwarded-For": "198.51.100.7"}
    assert get(client, guesser, address=proxy).status_code == 429
    # the client may write anything left of the proxy's entry: only the proxy's own entry counts
    spoofed = {**basic("ed", "guess-10"), "X-Forwarded-For": "203.0.113.1, 198.51.100.7"}
    assert get(client, spoofed, address=proxy).status_code == 429
    colleague = {**basic("ed", "editor-pass-1"), "X-Forwarded-For": "198.51.100.8"}
    assert get(client, colleague, address=proxy).status_code == 200


def test_password_checks_take_at_most_their_share_of_a_core(login_app):
    """With real scrypt hashes, distinct guesses from distinct clients (under every count limit) are checked
    until the burst of CPU time is spent, then refused; the ration refills at its share of a core."""
    client, checks, monkeypatch = login_app
    users = served_context().settings.auth_users_file
    users.write_text(f"ed:{generate_password_hash('editor-pass-1')}:editor\n")  # werkzeug's default: scrypt
    monkeypatch.setenv("LOGIN_FAILURES_PER_CLIENT", "1000")
    monkeypatch.setenv("LOGIN_FAILURES_PER_ACCOUNT", "1000")
    refresh_context()
    started_cpu = time.thread_time()
    check_password_hash(users.read_text().split(":")[1], "guess")
    per_check = time.thread_time() - started_cpu
    started = time.monotonic()
    answers = [get(client, basic(f"name{n}", "guess"), address=f"10.3.0.{n}").status_code for n in range(40)]
    elapsed = time.monotonic() - started
    assert 429 in answers and answers[0] == 401
    # one burst (1 s of CPU) plus a quarter of a core over the elapsed time, plus the check that overdrew it;
    # a tenth for the variation of one check's CPU time
    assert len(checks) * per_check <= 1.1 * (1.0 + 0.25 * elapsed + per_check), (len(checks), per_check, elapsed)
