"""Checks every request passes before any route, login or body: the host it names and, for a write, the site it
comes from. Both read headers only.

- **Host** (``ALLOWED_HOSTS``): a request naming another host is a 400. A page of another site can make a browser
  send requests to this instance under its own host name, pointed at this machine's address (DNS rebinding); an
  instance without a login would then answer that site's scripts as if they were its own pages.
- **Cross-site writes**: browsers resend HTTP Basic credentials with requests that other sites' pages make
  (forms, ``fetch`` with ``mode: 'no-cors'``), so a logged-in editor's browser could be made to train, stop or
  upload. A write (any method but GET, HEAD, OPTIONS) whose ``Sec-Fetch-Site`` says it came from another site,
  or, from a browser without that header, whose ``Origin`` names another host, is a 403. A request with neither
  header is not from a browser page (curl, scripts) and carries no browser's credentials: it passes. This is the
  algorithm of Go's ``net/http.CrossOriginProtection`` (and of the Fetch Metadata recommendations): no token to
  thread through every form, and it holds for multipart, ``text/plain`` and form-encoded bodies alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from flask import Flask, Response, request

from app.auth.gate import error_answer
from app.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of a request a page of this very origin made, or that the user made by typing or
# bookmarking ("none"); "same-site" is another origin (a sibling subdomain) and is refused like "cross-site".
SAME_ORIGIN_FETCH_SITES = frozenset({"same-origin", "none"})
ANY_HOST = "*"
# A Host header: a DNS name or IPv4 address, or a bracketed IPv6 address, then an optional port.
HOST_HEADER = re.compile(r"(?P<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?", re.IGNORECASE)
# A health check from a load balancer names the machine's address, not the site's name: it reveals only the
# number of models and stays answerable whatever ALLOWED_HOSTS says.
HOST_EXEMPT_PATHS = frozenset({"/healthz"})


def host_name(header: str | None) -> str | None:
    """The host name of a ``Host`` header, lowercase, without port or IPv6 brackets; None if it is malformed."""
    match = HOST_HEADER.fullmatch(header or "")
    if match is None or (match["port"] and not 0 < int(match["port"]) < 65536):
        return None
    return match["name"].lower().strip("[]").rstrip(".") or None


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    """Whether the ``Host`` header names one of ``allowed``: a name or address (any port), ``.example.org`` for
    that domain and its subdomains, ``*`` for any well-formed host."""
    name = host_name(header)
    if name is None:
        return False
    for entry in allowed:
        if entry in (ANY_HOST, name) or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry))):
            return True
    return False


def cross_site_refusal(method: str, host: str | None, fetch_site: str | None, origin: str | None) -> str | None:
    """Why a request may not write as coming from another site, or None if it may.

    Args:
        method: the HTTP method; GET, HEAD and OPTIONS never write and always pass.
        host: the request's ``Host`` header.
        fetch_site: its ``Sec-Fetch-Site`` header (every current browser sends it).
        origin: its ``Origin`` header (older browsers send this one only).
    """
    if method in SAFE_METHODS:
        return None
    if fetch_site:
        if fetch_site.strip().lower() in SAME_ORIGIN_FETCH_SITES:
            return None
        return f"a write from another site's page is refused (Sec-Fetch-Site: {fetch_site[:20]})"
    if origin is None:
        return None
    origin_host = urlsplit(origin.strip()).netloc if "://" in origin else ""
    if origin_host and host is not None and origin_host.lower() == host.lower():
        return None
    return f"a write from another origin is refused (Origin: {origin[:60]})"


class RequestChecks:
    """The ``before_request`` hook of :func:`install`: the host, then the site of a write.

    Args:
        settings: returns the current settings (the settings of the app's context), read at every request.
    """

    def __init__(self, settings: Callable[[], Settings]) -> None:
        self._settings = settings

    def __call__(self) -> Response | None:
        host = request.headers.get("Host")
        if request.path not in HOST_EXEMPT_PATHS and not host_allowed(host, self._settings().allowed_hosts):
            return error_answer(400, f"this instance does not answer to the host {(host or '')[:80]!r}: add it to "
                                "ALLOWED_HOSTS")
        refusal = cross_site_refusal(request.method, host, request.headers.get("Sec-Fetch-Site"),
                                     request.headers.get("Origin"))
        return error_answer(403, refusal) if refusal else None


def install(server: Flask, settings: Callable[[], Settings]) -> RequestChecks:
    """Put :class:`RequestChecks` before every other request hook of ``server`` (the login's included), so a
    request for another host or a cross-site write costs no password check and no body read."""
    checks = RequestChecks(settings)
    server.before_request_funcs.setdefault(None, []).insert(0, checks)
    server.extensions["request_checks"] = checks
    return checks
