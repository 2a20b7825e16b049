"""Every answer carries the security headers: pages, callbacks, the API, assets, errors."""

import pytest

from app.main import SECURITY_HEADERS


@pytest.fixture
def client(app_store):
    from app.main import server

    return server.test_client()


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/", 200), ("GET", "/_dash-layout", 200), ("GET", "/api/models", 200), ("GET", "/healthz", 200),
     ("GET", "/api/models/absent", 404), ("POST", "/_dash-update-component", 400), ("GET", "/assets/explorer.js", 200)],
)
def test_every_answer_carries_the_security_headers(client, method, url, status):
    response = client.open(url, method=method, json=[] if method == "POST" else None)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def test_a_refused_login_carries_them_too(app_store, monkeypatch):
    from app import services
    from app.main import server

    monkeypatch.setenv("AUTH_USERS", "alice:long-enough-secret")
    services.reset()
    try:
        response = server.test_client().get("/")
    finally:
        services.reset()
    assert response.status_code == 401
    assert all(response.headers.get(name) == value for name, value in SECURITY_HEADERS.items())
