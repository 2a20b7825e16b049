"""Login on a hosted instance: with AUTH_USERS set, every page and API route needs credentials, /healthz not."""

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from app.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status(url: str, user: str | None = None, password: str = "") -> int:
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet


def test_basic_auth_protects_pages_and_api_but_not_health():
    port = free_port()
    env = {**os.environ, "PORT": str(port), "AUTH_USERS": "alice:wonderland", "TF_CPP_MIN_LOG_LEVEL": "2",
           "MODEL_STORE": str(PROJECT_ROOT / "model_store")}
    server = subprocess.Popen([sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while status(f"{base}/healthz") != 200:
            assert server.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.3)
        assert status(f"{base}/") == 401
        assert status(f"{base}/api/models") == 401
        assert status(f"{base}/api/models", "alice", "wrong") == 401
        assert status(f"{base}/api/models", "alice", "wonderland") == 200
        assert status(f"{base}/", "alice", "wonderland") == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
