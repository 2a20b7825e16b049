"""The host and cross-site checks without a server: Host headers, ALLOWED_HOSTS, and which writes a browser's
headers show to come from another site."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth.request_checks import cross_site_refusal, host_allowed, host_name
from app.config import Settings, SettingsError

LOOPBACK = ("localhost", "127.0.0.1", "::1")


@pytest.mark.parametrize(("header", "name"), [
    ("localhost", "localhost"), ("LocalHost:8050", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
    ("[::1]:8050", "::1"), ("[::1]", "::1"), ("explorer.example.org.", "explorer.example.org"),
])
def test_host_names_are_read_without_port_brackets_or_case(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("header", [None, "", ":80", "a b", "evil.example:99999", "evil.example:80:80",
                                    "user@evil.example", "evil.example/path", "[::1", "é.example", "a\r\nb"])
def test_malformed_host_headers_name_no_host(header):
    assert host_name(header) is None
    assert not host_allowed(header, ("*",))


def test_only_the_allowed_hosts_pass():
    assert host_allowed("localhost:8050", LOOPBACK)
    assert host_allowed("[::1]:8050", LOOPBACK)
    assert not host_allowed("rebind.evil.example:8050", LOOPBACK)  # DNS rebinding names the attacker's host
    assert not host_allowed("127.0.0.2", LOOPBACK)
    assert host_allowed("explorer.example.org", (".example.org",))
    assert host_allowed("example.org", (".example.org",))
    assert not host_allowed("example.org.evil.example", (".example.org",))
    assert not host_allowed("badexample.org", (".example.org",))
    assert host_allowed("anything.example", ("*",))


@given(st.text(max_size=60))
@settings(max_examples=300, derandomize=True)
def test_any_host_header_is_answered_without_an_exception(header):
    assert host_allowed(header, LOOPBACK) in (True, False)
    refusal = cross_site_refusal("POST", header, None, header)
    assert refusal is None or refusal.startswith("a write from another origin is refused")


def test_allowed_hosts_default_to_loopback_and_the_host_listened_on():
    assert Settings.from_env({}).allowed_hosts == LOOPBACK
    assert Settings.from_env({"HOST": "0.0.0.0"}).allowed_hosts == LOOPBACK
    assert Settings.from_env({"HOST": "10.1.2.3"}).allowed_hosts == (*LOOPBACK, "10.1.2.3")
    assert Settings.from_env({"ALLOWED_HOSTS": "Explorer.Example.org, .lab.example,[::1]"}).allowed_hosts == (
        "explorer.example.org", ".lab.example", "::1")
    assert Settings.from_env({"ALLOWED_HOSTS": "*"}).allowed_hosts == ("*",)
    with pytest.raises(SettingsError, match="ALLOWED_HOSTS"):
        Settings.from_env({"ALLOWED_HOSTS": "http://explorer.example.org/"})


SAME_SITE_HOST = "explorer.example.org"


@pytest.mark.parametrize(("method", "fetch_site", "origin", "refused"), [
    # reads never write
    ("GET", "cross-site", "http://evil.example", False),
    ("HEAD", "cross-site", None, False),
    ("OPTIONS", "cross-site", None, False),
    # current browsers: Sec-Fetch-Site decides
    ("POST", "same-origin", None, False),
    ("POST", "none", None, False),
    ("POST", "cross-site", None, True),
    ("POST", "same-site", None, True),  # a sibling subdomain is another origin
    ("DELETE", "cross-site", f"https://{SAME_SITE_HOST}", True),
    ("POST", "same-origin", "http://evil.example", False),  # the browser's own word wins over a stale Origin
    # older browsers: Origin against Host
    ("POST", None, f"https://{SAME_SITE_HOST}", False),
    ("POST", None, "http://evil.example", True),
    ("POST", None, "null", True),  # a sandboxed iframe or a redirect
    ("POST", None, f"https://{SAME_SITE_HOST}.evil.example", True),
    ("PUT", None, "garbage", True),
    # neither header: not a browser page (curl, a script) and no browser's credentials
    ("POST", None, None, False),
])
def test_writes_from_another_site_are_refused(method, fetch_site, origin, refused):
    refusal = cross_site_refusal(method, SAME_SITE_HOST, fetch_site, origin)
    assert (refusal is not None) == refused
