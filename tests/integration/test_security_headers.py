"""Every answer carries the security headers: pages, callbacks, the API, assets, errors, refused logins; and the
Content-Security-Policy allows exactly the inline scripts Dash writes into a page."""

import base64
import hashlib
from html.parser import HTMLParser

import pytest

from app.main import CSP_DIRECTIVES, SECURITY_HEADERS

EXPECTED_DIRECTIVES = {
    "default-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


@pytest.fixture
def client(app_store):
    from app.main import server

    return server.test_client()


def directives(policy: str) -> dict[str, list[str]]:
    """``{"script-src": ["'self'", ...], ...}`` from a Content-Security-Policy header."""
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} given twice"
        parsed[name] = sources
    return parsed


class InlineScripts(HTMLParser):
    """The text of every script element a browser would run that has no ``src`` (JSON data blocks are not run)."""

    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        runs = attributes.get("type") in (None, "", "text/javascript", "application/javascript")
        self._inside = tag == "script" and "src" not in attributes and runs
        if self._inside:
            self.scripts.append("")

    def handle_data(self, data):
        if self._inside:
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        self._inside = False


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/", 200), ("GET", "/compare?images=1,2", 200), ("GET", "/_dash-layout", 200),
     ("GET", "/api/models", 200), ("GET", "/healthz", 200), ("GET", "/api/models/absent", 404),
     ("POST", "/api/jobs", 400), ("POST", "/_dash-update-component", 400), ("GET", "/assets/explorer.js", 200)],
)
def test_every_answer_carries_the_security_headers(client, method, url, status):
    response = client.open(url, method=method, json=[] if method == "POST" else None)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    # One policy for every answer: the one the pages are served with.
    assert response.headers["Content-Security-Policy"] == client.get("/train").headers["Content-Security-Policy"]


def test_the_policy_allows_dashs_inline_scripts_by_hash_and_nothing_else_inline(client):
    page = client.get("/?model=mnist-cnn")
    policy = directives(page.headers["Content-Security-Policy"])
    assert {name: " ".join(sources) for name, sources in policy.items() if name != "script-src"} == EXPECTED_DIRECTIVES

    parser = InlineScripts()
    parser.feed(page.get_data(as_text=True))
    # Dash's renderer and the pages' title updater at least (an independent count of what the page holds).
    assert len(parser.scripts) >= 2 and any("new DashRenderer()" in script for script in parser.scripts)
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
              for script in parser.scripts}
    script_src = policy["script-src"]
    assert script_src[0] == "'self'" and set(script_src[1:]) == hashes
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert CSP_DIRECTIVES["script-src"] == ["'self'"]


def test_a_refused_login_carries_them_too(app_store, monkeypatch):
    from app.main import server
    from tests.app_context import refresh_context

    expected = server.test_client().get("/healthz").headers["Content-Security-Policy"]
    monkeypatch.setenv("AUTH_USERS", "alice:long-enough-secret")
    refresh_context()
    try:
        page = server.test_client().get("/")
        api = server.test_client().get("/api/models")
    finally:
        refresh_context()
    for response in (page, api):
        assert response.status_code == 401
        assert all(response.headers.get(name) == value for name, value in SECURITY_HEADERS.items())
        assert response.headers["Content-Security-Policy"] == expected
        assert "frame-ancestors 'none'" in expected
