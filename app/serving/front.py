"""The server's front: slow clients wait in an event loop, never in one of the app's threads.

With gunicorn's threaded worker every connection held a thread while it sent its request: measured, 4 connections
dripping their headers (a byte every 3 s) held all 4 threads of a 1 x 4 server, and ``/healthz`` timed out. Here
gunicorn's own asyncio worker (``asgi``, in the pinned gunicorn) reads headers and bodies in its event loop, with
gunicorn's limits on the request line and header fields (414, 431), and :class:`WholeRequestFront` gives the Flask
app only whole requests, in a pool of ``THREADS`` threads:

- headers that drip in cost the event loop a connection, no thread: measured on a 1 x 4 server, with 1,000 such
  connections held ``/healthz`` answered in 7 ms (median) and a logged-in view in 41 ms. gunicorn sets no deadline
  on a first request's headers (``keepalive`` bounds the wait for the next ones): how many connections one address
  may hold is a limit for a proxy or firewall;
- a body of up to ``MAX_REQUEST_BYTES`` (every callback, every API call but uploads) is received in the event loop
  before a thread starts, within :data:`BODY_DEADLINE_S` (else 408); a chunked one is handed over with its length,
  so the app's own size checks apply to it as to any other;
- a body declared larger (``Content-Length``: model uploads, up to ``MAX_UPLOAD_BYTES``) is streamed to the app
  unread, so the login's check answers 401 before a byte of it is read; a chunked body that grows past
  ``MAX_REQUEST_BYTES`` is streamed on too, and the app answers 413 on routes it is too large for (a chunked model
  upload of 2.8 MB is accepted, as under ``make run``). A thread that reads a streamed body waits at most
  gunicorn's ``timeout`` for each piece;
- the app's answer is collected in its thread (the app streams no response) and sent from the event loop, so a
  client that reads slowly holds no thread either.

gunicorn's master loads the worker class before any worker forks, and TensorFlow must be imported after the fork:
of the app this module imports only :mod:`app.config`, which loads no TensorFlow.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn.workers.gasgi import ASGIWorker

from app.config import Settings

logger = logging.getLogger(__name__)

# A whole body of up to MAX_REQUEST_BYTES must arrive within this (else 408): 1 MB takes 10 s at 100 kB/s.
BODY_DEADLINE_S = 30.0
# Headers of the front's own answers (408, 413 before the app saw the request, 500 if the app failed to answer).
FRONT_HEADERS = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff"),
                 (b"connection", b"close")]

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class StreamedBody(io.RawIOBase):
    """A body the app reads as it arrives (``wsgi.input``), from its own thread: each read waits for the event loop's
    next piece. What was already received (``prefix``) is read first. A client that went away, or sent nothing for
    gunicorn's ``timeout``, ends the body early: werkzeug then answers 400 (fewer bytes than announced)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive, prefix: bytes = b"") -> None:
        super().__init__()
        self._loop = loop
        self._receive = receive
        self._pending = bytearray(prefix)
        self._more = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and self._more:
            message = asyncio.run_coroutine_threadsafe(self._receive(), self._loop).result()
            if message["type"] != "http.request":
                self._more = False
                break
            self._pending += message.get("body", b"")
            self._more = message.get("more_body", False)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        del self._pending[:size]
        return size


def header(scope: Scope, name: bytes) -> bytes | None:
    """The value of the request header ``name`` (lowercase), or None."""
    return next((value for key, value in scope["headers"] if key == name), None)


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when it has none (a chunked body) or one that is not a number."""
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def wsgi_environ(scope: Scope, body: io.IOBase, length: int | None) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request whose body is ``body`` (``length`` bytes; None: read to its end)."""
    server_name, server_port = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        # The body ends where the request's framing ends (werkzeug reads it to its end, bounded by the app's limit).
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = scope["client"][0], str(scope["client"][1])
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue  # the body's length is the one given below, whatever its framing was
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return environ


def call_wsgi(app: Callable, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run the WSGI ``app`` on ``environ`` to the end: (status, headers, the whole body)."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        started["status"], started["headers"] = status, headers
        return chunks.append

    chunks: list[bytes] = []
    iterable: Iterable[bytes] = app(environ, start_response)
    try:
        chunks.extend(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in started["headers"]]
    return int(started["status"].split(" ", 1)[0]), headers, b"".join(chunks)


async def answer(send: Send, status: int, message: str) -> None:
    """The front's own JSON answer (the connection closes after it: the request's body may be unread)."""
    await send({"type": "http.response.start", "status": status, "headers": FRONT_HEADERS})
    await send({"type": "http.response.body", "body": json.dumps({"error": message}).encode()})


class WholeRequestFront:
    """An ASGI app that serves the WSGI ``app`` with whole requests and whole answers (see the module's docstring).

    Args:
        app: the WSGI app (``app.main:server``).
        threads: the pool the app runs in (gunicorn's ``threads``, ``THREADS``).
        max_buffered_bytes: bodies up to this size are received whole before the app sees them
            (``MAX_REQUEST_BYTES``).
        body_deadline_s: how long such a body may take to arrive.
    """

    def __init__(self, app: Callable, threads: int, max_buffered_bytes: int,
                 body_deadline_s: float = BODY_DEADLINE_S) -> None:
        self.app = app
        self.max_buffered_bytes = max_buffered_bytes
        self.body_deadline_s = body_deadline_s
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="app")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        loop = asyncio.get_running_loop()
        length = declared_length(scope)
        if length is not None and length > self.max_buffered_bytes:
            body: io.IOBase = io.BufferedReader(StreamedBody(loop, receive))
        else:
            try:
                received, complete = await asyncio.wait_for(self._receive_body(receive), self.body_deadline_s)
            except TimeoutError:
                await answer(send, 408, f"the request's body did not arrive within {self.body_deadline_s:.0f} s")
                return
            if received is None:
                return  # the client went away
            if complete:
                body, length = io.BytesIO(received), len(received)
            else:
                body = io.BufferedReader(StreamedBody(loop, receive, prefix=received))
        try:
            status, headers, content = await loop.run_in_executor(
                self.executor, call_wsgi, self.app, wsgi_environ(scope, body, length))
        except Exception as exc:  # Flask answers its own errors: this is a failure of the WSGI app itself
            logger.exception("the app gave no answer to %s %s", scope["method"], scope["path"], exc_info=exc)
            await answer(send, 500, f"internal error: {type(exc).__name__}")
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _receive_body(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(the body, True) once it has all arrived; (its first part, False) once it is past ``max_buffered_bytes``
        (a chunked body: its length was not known); (None, False) if the client went away."""
        received = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, False
            received += message.get("body", b"")
            if not message.get("more_body", False):
                return bytes(received), True
            if len(received) > self.max_buffered_bytes:
                return bytes(received), False


class Worker(ASGIWorker):
    """gunicorn's asyncio worker serving ``app.main:server`` (a WSGI app) through :class:`WholeRequestFront`, with
    ``threads`` threads for the app; ``post_worker_init`` (the warm-up) runs after the app is loaded, as before."""

    @classmethod
    def check_config(cls, cfg, log) -> None:
        """Nothing to warn about: ``threads`` sizes the app's pool (gunicorn's own ASGI worker ignores it)."""

    def load_wsgi(self) -> None:
        """Load the WSGI app named on the command line and put the front before it."""
        super().load_wsgi()
        self.wsgi = self.asgi  # the app itself, as gunicorn's other workers hold it (the warm-up opens its models)
        self.asgi = WholeRequestFront(self.asgi, threads=self.cfg.threads,
                                      max_buffered_bytes=Settings.from_env().max_request_bytes)
