"""The server's front (app/serving/front.py) without a server: what the WSGI app is given and when, and what
the client gets.

An ASGI request is played by hand: ``receive`` hands out the body's pieces (waiting where a slow client would), and
``send`` records the answer.
"""

from __future__ import annotations

import asyncio
import json

from app.serving.front import WholeRequestFront, wsgi_environ

LIMIT = 1000


def scope(method: str = "POST", headers: dict[str, str] | None = None) -> dict:
    return {"type": "http", "method": method, "path": "/api/jobs", "query_string": b"a=1", "http_version": "1.1",
            "scheme": "http", "server": ("127.0.0.1", 8050), "client": ("127.0.0.1", 5000), "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}


class Recorder:
    """A WSGI app that reads its whole body (unless ``read`` is False) and says what it got."""

    def __init__(self, read: bool = True) -> None:
        self.read = read
        self.environ: dict | None = None
        self.body: bytes | None = None

    def __call__(self, environ, start_response):
        self.environ = environ
        self.body = environ["wsgi.input"].read() if self.read else None
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"got": ', str(len(self.body or b"")).encode(), b"}"]


def play(front: WholeRequestFront, request_scope: dict, pieces: list[bytes], gap_s: float = 0.0):
    """Run one request: the body in ``pieces``, ``gap_s`` apart. Returns (status, body, pieces the app waited for)."""
    sent: list[dict] = []
    handed = {"count": 0}

    async def receive():
        index = handed["count"]
        handed["count"] += 1
        if index >= len(pieces):
            await asyncio.sleep(3600)  # a client that sends nothing more
        await asyncio.sleep(gap_s)
        return {"type": "http.request", "body": pieces[index], "more_body": index < len(pieces) - 1}

    async def send(message):
        sent.append(message)

    async def main():
        await front(request_scope, receive, send)

    asyncio.run(main())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, sent


def test_a_chunked_body_within_the_limit_reaches_the_app_whole_with_its_length():
    app = Recorder()
    front = WholeRequestFront(app, threads=1, max_buffered_bytes=LIMIT)

    status, body, sent = play(front, scope(headers={"Transfer-Encoding": "chunked"}), [b"ab", b"cd", b"e"])

    assert (status, json.loads(body)) == (200, {"got": 5})
    assert app.body == b"abcde" and app.environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_TRANSFER_ENCODING" not in app.environ
    assert len([m for m in sent if m["type"] == "http.response.body"]) == 1  # the answer goes out whole


def test_a_body_that_does_not_arrive_in_time_is_a_408_and_the_app_never_runs():
    app = Recorder()
    front = WholeRequestFront(app, threads=1, max_buffered_bytes=LIMIT, body_deadline_s=0.3)

    status, body, _ = play(front, scope(headers={"Content-Length": "10"}), [b"a", b"b"], gap_s=0.2)

    assert status == 408 and "did not arrive" in json.loads(body)["error"]
    assert app.environ is None


def test_a_body_declared_larger_than_the_limit_is_not_read_before_the_app_runs():
    app = Recorder(read=False)
    front = WholeRequestFront(app, threads=1, max_buffered_bytes=LIMIT)

    status, _, _ = play(front, scope(headers={"Content-Length": str(LIMIT * 100)}), [b"x" * LIMIT] * 100)

    assert status == 200 and app.environ["CONTENT_LENGTH"] == str(LIMIT * 100)


def test_a_body_declared_larger_than_the_limit_is_streamed_to_the_app():
    app = Recorder()
    front = WholeRequestFront(app, threads=1, max_buffered_bytes=LIMIT)

    _, body, _ = play(front, scope(headers={"Content-Length": str(LIMIT * 5)}), [b"x" * LIMIT] * 5)

    assert json.loads(body) == {"got": LIMIT * 5} and app.body == b"x" * LIMIT * 5


def test_a_chunked_body_past_the_limit_is_streamed_on_with_no_length_for_the_app_to_judge():
    app = Recorder()
    front = WholeRequestFront(app, threads=1, max_buffered_bytes=LIMIT)

    _, body, _ = play(front, scope(headers={"Transfer-Encoding": "chunked"}), [b"y" * 600] * 4)

    assert json.loads(body) == {"got": 2400}
    assert "CONTENT_LENGTH" not in app.environ and app.environ["wsgi.input_terminated"]


def test_the_environ_carries_the_request_as_gunicorn_gave_it():
    environ = wsgi_environ(scope("GET", {"Authorization": "Basic eA==", "X-Many": "a", "x-many": "b",
                                         "Content-Type": "text/plain"}), None, None)

    assert environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] == "/api/jobs"
    assert environ["QUERY_STRING"] == "a=1" and environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_AUTHORIZATION"] == "Basic eA==" and environ["HTTP_X_MANY"] == "a,b"
    assert environ["CONTENT_TYPE"] == "text/plain" and "CONTENT_LENGTH" not in environ
