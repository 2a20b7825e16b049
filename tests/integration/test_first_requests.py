"""A freshly started server, with or without a login, answers requests that arrive together before any page was
served: the page's scripts, its layout and the API, all 200 (gunicorn's threads once got 500 "dash is not a
registered library" while Dash was still setting up on the first request's thread)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT

# A new interpreter: the app is imported as a worker imports it, then hit by one request per thread at once.
FIRST_REQUESTS = """
import base64, json, os, sys, threading
from app.main import app, server
headers = {"Authorization": "Basic " + base64.b64encode(os.environ["CREDENTIALS"].encode()).decode()} \
    if "CREDENTIALS" in os.environ else {}
set_up = sorted(app.registered_paths)
paths = ["/_dash-component-suites/dash/deps/react@18.3.1.min.js",
         "/_dash-component-suites/dash/deps/react-dom@18.3.1.min.js",
         "/_dash-component-suites/dash/dash-renderer/build/dash_renderer.min.js",
         "/_dash-layout", "/_dash-dependencies", "/api/models"] * 2
answers = []
start = threading.Barrier(len(paths))

def request(path):
    client = server.test_client()
    start.wait()
    answers.append([path, client.get(path, headers=headers).status_code])

threads = [threading.Thread(target=request, args=(path,)) for path in paths]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"set_up": set_up, "answers": answers}))
"""


@pytest.mark.parametrize("login", [False, True], ids=["open", "with a login"])
def test_requests_arriving_together_on_a_fresh_server_all_get_their_answer(tmp_path, login):
    env = {**os.environ, "STATE_DIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("AUTH_USERS", "AUTH_USERS_FILE", "CREDENTIALS", "REDIS_URL"):
        env.pop(name, None)
    if login:
        env.update(AUTH_USERS="alice:wonderland", CREDENTIALS="alice:wonderland")
    run = subprocess.run([sys.executable, "-c", FIRST_REQUESTS], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "dash" in result["set_up"]  # Dash's scripts are registered before the first request is taken
    assert len(result["answers"]) == 12
    assert all(status == 200 for _, status in result["answers"]), result["answers"]
