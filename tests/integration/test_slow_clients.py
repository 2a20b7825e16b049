"""Slow clients cannot stall the production server: gunicorn started as ``make serve`` starts it (with a login, one
worker of 4 threads: the fewest threads to hold), 64 connections dripping their headers, 16 dripping a callback's
body and 8 not reading a 4.7 MB answer, held for 8 s, while ``/healthz`` and a logged-in view answer within a
second (``scripts/slow_clients.py``; with gunicorn's threaded worker, as before, neither answered within 3 s).

The same server answers a chunked body over ``MAX_REQUEST_BYTES`` with a JSON 413, never a cut body's "invalid
JSON" or an HTML 400.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from app.config import PROJECT_ROOT
from tests.conftest import BUNDLED_MODEL
from tests.integration.test_auth import free_port

pytestmark = pytest.mark.slow

USER, PASSWORD = "alice", "secret"


def _slow_clients_module():
    """``scripts/slow_clients.py`` (standard library only: ``make image-check`` runs it with the system Python)."""
    spec = importlib.util.spec_from_file_location("slow_clients", PROJECT_ROOT / "scripts" / "slow_clients.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


slow_clients = _slow_clients_module()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn as ``make serve`` runs it, 1 worker x 4 threads, with a login; yields its base URL."""
    root = tmp_path_factory.mktemp("slow-clients")
    shutil.copytree(BUNDLED_MODEL, root / "store" / "mnist-cnn")
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MODEL_STORE": str(root / "store"),
           "STATE_DIR": str(root / "state"), "WORKERS": "1", "THREADS": "4", "AUTH_USERS": f"{USER}:{PASSWORD}"}
    for name in ("REDIS_URL", "AUTH_USERS_FILE", "READ_ONLY", "MAX_REQUEST_BYTES"):
        env.pop(name, None)
    log = root / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(slow_clients.serve_command(port), cwd=PROJECT_ROOT, env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        slow_clients.wait_for_health(base, server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


def test_healthz_and_a_logged_in_view_answer_within_a_second_under_88_slow_connections(served):
    measured = slow_clients.check(served, slow_clients.login(USER, PASSWORD), log=lambda _: None, duration_s=8)

    assert all(len(probe.latencies) >= 8 and probe.slow == 0 for probe in measured)


def post_chunked(base: str, path: str, body: bytes) -> tuple[int, str, bytes]:
    """POST ``body`` with ``Transfer-Encoding: chunked`` (no Content-Length), logged in: (status, type, answer)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        connection.endheaders()
        try:
            for start in range(0, len(body), 65536):
                piece = body[start:start + 65536]
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before the whole body was sent
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/api/jobs", "/_dash-update-component"])
def test_a_chunked_body_over_the_request_limit_is_a_json_413_through_the_server(served, path):
    body = json.dumps({"output": "x.children", "pad": "a" * 1_200_000}).encode()

    status, content_type, answer = post_chunked(served, path, body)

    assert status == 413 and content_type == "application/json", answer[:300]
    assert "MAX_REQUEST_BYTES" in json.loads(answer)["error"]


def test_a_chunked_body_within_the_limit_reaches_the_app_whole(served):
    status, content_type, answer = post_chunked(served, "/api/jobs", json.dumps({"dataset": "no-such-set"}).encode())

    assert status == 400 and content_type == "application/json"
    assert "invalid JSON" not in answer.decode() and "no-such-set" in answer.decode()
