"""Login on a real server (Dash's development server and gunicorn), as a hosted instance runs it: every route but
/healthz needs credentials, malformed headers are 401s, an unauthenticated body is refused before it is sent, and
no password, token or hash reaches the server's log."""

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from werkzeug.security import generate_password_hash

from app.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def token(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def status(url: str, user: str | None = None, password: str = "", header: str | None = None,
           method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method)
    if user:
        request.add_header("Authorization", f"Basic {token(user, password)}")
    if header:
        request.add_header("Authorization", header)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet


def headers_only(port: int, path: str, declared_bytes: int) -> bytes:
    """Send a POST's headers declaring ``declared_bytes`` of body, send no body, and return what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {declared_bytes}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


SERVERS = {
    "dev server": [sys.executable, "-m", "app"],
    # with the access log on (it is off by default): its default format names the user, never the password
    "gunicorn": [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "2", "--no-control-socket",
                 "--access-logfile", "-", "--config", "app/gunicorn_conf.py", "app.main:server"],
}


@pytest.mark.parametrize("server", SERVERS)
def test_login_on_a_real_server(server, tmp_path):
    port = free_port()
    users = tmp_path / "users"
    users.write_text(f"bob:{generate_password_hash('builder-bob-9')}:viewer\n")
    env = {**os.environ, "PORT": str(port), "AUTH_USERS": "alice:wonderland", "AUTH_USERS_FILE": str(users),
           "TF_CPP_MIN_LOG_LEVEL": "2", "MODEL_STORE": str(PROJECT_ROOT / "model_store"),
           "STATE_DIR": str(tmp_path / "state")}
    command = SERVERS[server] + (["--bind", f"127.0.0.1:{port}"] if server == "gunicorn" else [])
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while status(f"{base}/healthz") != 200:
            assert process.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        for path in ("/", "/api/models", "/_dash-layout", "/_dash-dependencies"):
            assert status(f"{base}{path}") == 401
            assert status(f"{base}{path}", header="Basic !!!") == 401
            assert status(f"{base}{path}", header="basic " + token("alice", "wonderland")) == 401
            assert status(f"{base}{path}", "alice", "wrong") == 401
            assert status(f"{base}{path}", "alice", "wonderland") == 200
            assert status(f"{base}{path}", "bob", "builder-bob-9") == 200
        assert status(f"{base}/api/jobs", "bob", "builder-bob-9", method="POST") == 403

        started = time.monotonic()
        answer = headers_only(port, "/_dash-update-component", 300 * 10**6)
        assert answer.startswith(b"HTTP/1.1 401") and time.monotonic() - started < 10, answer[:200]
        assert b"www-authenticate: basic" in answer.lower()  # header names are case-insensitive
        assert process.poll() is None and status(f"{base}/healthz") == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
    logged = log.read_text(errors="replace")
    assert "GET /api/models HTTP/1.1" in logged  # every request is logged: the scan below is not vacuous
    for secret in ("wonderland", "builder-bob-9", token("alice", "wonderland"), token("bob", "builder-bob-9"),
                   users.read_text().split(":", 1)[1].rsplit(":", 1)[0].split("$")[-1]):
        assert secret not in logged
