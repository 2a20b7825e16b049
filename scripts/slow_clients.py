"""Slow clients against a running server, on the loopback only, bounded in count and time; meanwhile the server
must answer ``/healthz`` and a logged-in view within a second.

Three kinds of slow client, each holding its connection open for the whole run:

- header drippers (no credentials needed): a request line, then one header byte every ``--interval`` seconds;
- body drippers (logged in): a callback request's headers with a ``Content-Length``, then one body byte at a time;
- slow readers (logged in): ask for the largest script the page loads and read none of it (a small receive buffer).

Used by ``tests/integration/test_slow_clients.py`` (the server as ``make serve`` starts it) and by
``scripts/image_check.py`` (the container's own command). Standard library only.

Usage: ``python3 scripts/slow_clients.py --base http://127.0.0.1:8050 [--user alice --password secret]``, or
``--serve`` to start gunicorn from this checkout as ``make serve`` does (``--worker-class gthread`` for the threaded
worker the server used before, to see what slow clients do to it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# What "answering" means under slow clients.
ANSWER_WITHIN_S = 1.0
# A probe that waits longer than this is counted as unanswered (and does not stall the run).
PROBE_TIMEOUT_S = 3.0
VIEW = "/api/models/mnist-cnn/activations?layer=Conv2D_1&image={image}"
CALLBACK = "/_dash-update-component"
# The largest file the explorer page loads (plotly.js, ~4.7 MB): far more than loopback's socket buffers hold.
LARGE_FILE = "/_dash-component-suites/plotly/package_data/plotly.min.js"
READER_BUFFER_BYTES = 4096


def login(user: str, password: str) -> dict[str, str]:
    """The headers of an HTTP Basic login."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 request line and headers, ending with the empty line."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class SlowClients:
    """Opens and feeds the slow connections from one thread until :meth:`stop`.

    Args:
        host, port: the server (loopback).
        headers: how many connections drip their headers.
        bodies: how many drip a callback's body (with ``credentials``).
        readers: how many ask for :data:`LARGE_FILE` and never read it (with ``credentials``).
        credentials: login headers (empty: none configured).
        interval_s: seconds between two bytes of one connection.
    """

    host: str
    port: int
    headers: int = 64
    bodies: int = 16
    readers: int = 8
    credentials: dict[str, str] = field(default_factory=dict)
    interval_s: float = 2.0
    opened: int = 0
    dropped: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _connect(self, receive_buffer: int | None = None) -> socket.socket:
        sock = socket.socket()
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(5)
        sock.connect((self.host, self.port))
        self._sockets.append(sock)
        self.opened += 1
        return sock

    def start(self) -> SlowClients:
        """Open every connection and start dripping."""
        drippers = []
        for _ in range(self.headers):
            sock = self._connect()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            drippers.append(sock)
        for _ in range(self.bodies):
            sock = self._connect()
            sock.sendall(request_head("POST", CALLBACK, {"Content-Type": "application/json", "Content-Length": "100000",
                                                         **self.credentials}))
            drippers.append(sock)
        for _ in range(self.readers):
            self._connect(READER_BUFFER_BYTES).sendall(request_head("GET", LARGE_FILE, self.credentials))
        self._thread = threading.Thread(target=self._drip, args=(drippers,), daemon=True)
        self._thread.start()
        return self

    def _drip(self, drippers: list[socket.socket]) -> None:
        while not self._stop.wait(self.interval_s):
            for sock in list(drippers):
                try:
                    sock.send(b"a")
                except OSError:  # the server closed it: a slow client it dropped
                    drippers.remove(sock)
                    self.dropped += 1

    def stop(self) -> None:
        """Stop dripping and close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def timed_get(host: str, port: int, path: str, headers: dict[str, str]) -> float | None:
    """Seconds until a 200 answer to ``GET path`` was read whole; None for another status, an error or a timeout."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return time.monotonic() - started if response.status == 200 else None
    except OSError:
        return None
    finally:
        connection.close()


@dataclass
class Measured:
    """Latencies of one probe under slow clients (None: no 200 within :data:`PROBE_TIMEOUT_S`)."""

    name: str
    latencies: list[float | None] = field(default_factory=list)

    @property
    def slow(self) -> int:
        """Probes not answered within :data:`ANSWER_WITHIN_S`."""
        return sum(1 for value in self.latencies if value is None or value > ANSWER_WITHIN_S)

    def summary(self) -> str:
        answered = sorted(value for value in self.latencies if value is not None)
        if not answered:
            return f"{self.name}: none of {len(self.latencies)} answered within {PROBE_TIMEOUT_S:.0f} s"
        return (f"{self.name}: {len(answered)}/{len(self.latencies)} answered, median "
                f"{statistics.median(answered) * 1000:.0f} ms, max {answered[-1] * 1000:.0f} ms, "
                f"{self.slow} over {ANSWER_WITHIN_S:.0f} s or unanswered")


def probe(host: str, port: int, credentials: dict[str, str], duration_s: float, health: Measured, view: Measured,
          image: int = 0) -> int:
    """GET ``/healthz`` and a logged-in view (a new image each time) every half second for ``duration_s``; returns
    the next image."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        health.latencies.append(timed_get(host, port, "/healthz", {}))
        view.latencies.append(timed_get(host, port, VIEW.format(image=image % 100), credentials))
        image += 1
        time.sleep(0.5)
    return image


def measure_under_slow_clients(base: str, credentials: dict[str, str], duration_s: float = 12.0,
                               headers: int = 64, bodies: int = 16, readers: int = 8, interval_s: float = 2.0,
                               baseline_s: float = 3.0) -> tuple[list[Measured], SlowClients]:
    """Probe ``/healthz`` and a logged-in view for ``baseline_s`` without slow clients (which also logs in on the
    workers: each checks a password once, ~0.2 s), then hold the slow connections for ``duration_s`` and probe
    again.

    Returns:
        The probes' latencies (without slow clients, then with them) and the slow clients (how many were opened,
        how many the server dropped).
    """
    address = urlsplit(base)
    host, port = address.hostname, address.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"slow clients run on the loopback only, not {host}")
    quiet = [Measured("without slow clients: GET /healthz"), Measured("without slow clients: GET activations view")]
    image = probe(host, port, credentials, baseline_s, *quiet)
    held = [Measured("GET /healthz"), Measured("GET activations view (logged in)")]
    clients = SlowClients(host, port, headers, bodies, readers, credentials, interval_s).start()
    try:
        time.sleep(min(interval_s, 1.0))  # every slow connection has been taken by the server
        probe(host, port, credentials, duration_s, *held, image=image)
    finally:
        clients.stop()
    return quiet + held, clients


def check(base: str, credentials: dict[str, str], log=print, **kwargs) -> list[Measured]:
    """:func:`measure_under_slow_clients`, logged; raises ``AssertionError`` if a probe under slow clients was not
    answered within :data:`ANSWER_WITHIN_S`. Returns the probes under slow clients."""
    measured, clients = measure_under_slow_clients(base, credentials, **kwargs)
    for quiet in measured[:2]:
        log(quiet.summary())
    log(f"{clients.opened} slow connections ({clients.headers} header drippers, {clients.bodies} body drippers, "
        f"{clients.readers} slow readers), {clients.dropped} dropped by the server")
    for held in measured[2:]:
        log(held.summary())
    late = [held.summary() for held in measured[2:] if held.slow]
    if late:
        raise AssertionError(f"under {clients.opened} slow connections: {'; '.join(late)}")
    return measured[2:]


def serve_command(port: int, worker_class: str | None = None) -> list[str]:
    """gunicorn as ``make serve`` starts it (``worker_class``: another worker, to compare)."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
            *(["--worker-class", worker_class] if worker_class else []),
            "--config", "app/gunicorn_conf.py", "app.main:server"]


def wait_for_health(base: str, server: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until ``/healthz`` answers 200; fails if the server exits first or after ``timeout_s``."""
    address = urlsplit(base)
    deadline = time.monotonic() + timeout_s
    while timed_get(address.hostname, address.port, "/healthz", {}) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not come up (exit code {server.poll()})")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a running server, e.g. http://127.0.0.1:8050")
    parser.add_argument("--serve", action="store_true", help="start gunicorn from this checkout as make serve does")
    parser.add_argument("--worker-class", help="with --serve: gunicorn's worker class instead of the configured one")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--headers", type=int, default=64)
    parser.add_argument("--bodies", type=int, default=16)
    parser.add_argument("--readers", type=int, default=8)
    args = parser.parse_args()
    credentials = login(args.user, args.password)
    options = {"duration_s": args.duration, "headers": args.headers, "bodies": args.bodies, "readers": args.readers}
    if not args.serve:
        check(args.base, credentials, **options)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as state, open(Path(state) / "server.log", "wb") as server_log:
        env = {**os.environ, "AUTH_USERS": f"{args.user}:{args.password}", "STATE_DIR": state}
        server = subprocess.Popen(serve_command(port, args.worker_class), cwd=ROOT, env=env, stdout=server_log,
                                  stderr=subprocess.STDOUT)
        try:
            wait_for_health(base, server)
            check(base, credentials, **options)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"FAILED: {failure}")
        sys.exit(1)
