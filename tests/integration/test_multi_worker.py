"""Two gunicorn workers serve one instance: an upload, a deletion and a training job made through one worker are
seen identically through the other (the model store and the job store are the only state; no worker keeps its own).

gunicorn's access log names the worker process of every answer (``%(p)s``), so the test knows that both workers
answered and compares what each of them said.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from app.config import PROJECT_ROOT
from tests.conftest import BUNDLED_MODEL, build_tiny_model, tiny_test_set
from tests.integration.test_auth import free_port

pytestmark = pytest.mark.slow

TINY_JOB = {
    "dataset": "mnist-subset", "conv_layers": [{"filters": 4}], "dense_layers": [{"units": 8}], "epochs": 1,
    "max_train": 320, "max_test": 40, "batch_size": 64, "name": "trained-by-one",
}


def call(base: str, path: str, method: str = "GET", body: bytes | None = None,
         content_type: str | None = None) -> tuple[int, dict, str]:
    """(status, JSON answer, request id) of one request; the id lets the access log say which worker answered."""
    request_id = uuid.uuid4().hex
    request = urllib.request.Request(f"{base}{path}?rid={request_id}" if "?" not in path else
                                     f"{base}{path}&rid={request_id}", data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    return status, json.loads(raw) if raw else {}, request_id


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    for key, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def worker_of(log: Path) -> dict[str, str]:
    """Request id -> pid of the worker that answered it, from the access log."""
    answered = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("ACCESS ") and "rid=" in line:
            _, pid, request_line = line.split(" ", 2)
            answered[request_line.split("rid=")[1].split()[0].split("&")[0]] = pid
    return answered


def ask_both_workers(base: str, log: Path, path: str, rounds: int = 48) -> dict[str, list[dict]]:
    """Ask ``path`` from several threads until both workers have answered; pid -> the answers it gave."""
    by_worker: dict[str, list[dict]] = defaultdict(list)
    for _ in range(5):
        answers: list[tuple[int, dict, str]] = []
        threads = [threading.Thread(target=lambda into=answers: into.append(call(base, path))) for _ in range(rounds)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.5)  # the access log is written after the answer
        pids = worker_of(log)
        for status, body, request_id in answers:
            assert status == 200, body
            by_worker[pids[request_id]].append(body)
        if len(by_worker) == 2:
            return by_worker
    raise AssertionError(f"only workers {sorted(by_worker)} answered {path}")


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """gunicorn with 2 workers on a store holding the bundled model; yields (base URL, access log, store)."""
    root = tmp_path_factory.mktemp("two-workers")
    store = root / "store"
    shutil.copytree(BUNDLED_MODEL, store / "mnist-cnn")
    port = free_port()
    log = root / "server.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MODEL_STORE": str(store), "STATE_DIR": str(root / "state"),
           "PORT": str(port)}
    env.pop("REDIS_URL", None)
    env.pop("AUTH_USERS", None)
    env.pop("AUTH_USERS_FILE", None)
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4", "--no-control-socket",
               "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", "--access-logformat", "ACCESS %(p)s %(r)s",
               "--config", "app/gunicorn_conf.py", "app.main:server"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while log.read_text(errors="replace").count("Booted worker") + \
                log.read_text(errors="replace").count("Booting worker") < 2 or not _healthy(base):
            assert process.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield base, log, store
    finally:
        process.terminate()
        process.wait(timeout=30)


def _healthy(base: str) -> bool:
    try:
        return call(base, "/healthz")[0] == 200
    except OSError:
        return False


def test_an_upload_and_a_deletion_are_seen_identically_by_both_workers(two_workers, tmp_path):
    import keras

    base, log, store = two_workers
    keras.backend.clear_session()
    build_tiny_model().save(tmp_path / "tiny.keras")
    images, labels = tiny_test_set()
    test_set = io.BytesIO()
    np.savez(test_set, images=images, labels=labels)
    body, content_type = multipart({"name": "shared-upload"}, {"model": ("tiny.keras", (tmp_path / "tiny.keras")
                                                                         .read_bytes()),
                                                               "test_set": ("t.npz", test_set.getvalue())})
    status, answer, _ = call(base, "/api/models", "POST", body, content_type)
    assert status == 201, answer

    listings = ask_both_workers(base, log, "/api/models")
    seen = {pid: {json.dumps(sorted((m["name"], m["status"], m["version"]) for m in body["models"]))
                  for body in bodies} for pid, bodies in listings.items()}
    assert len(set.union(*seen.values())) == 1  # every answer of every worker lists the same models and versions
    assert "shared-upload" in next(iter(set.union(*seen.values())))
    predictions = ask_both_workers(base, log, "/api/models/shared-upload/predict?image=5")
    values = {json.dumps(body["probabilities"]) for bodies in predictions.values() for body in bodies}
    assert len(values) == 1

    status, _, _ = call(base, "/api/models/shared-upload", "DELETE")
    assert status == 204
    after = ask_both_workers(base, log, "/api/models")
    assert all("shared-upload" not in {m["name"] for m in body["models"]} for bodies in after.values()
               for body in bodies)


def test_a_job_started_through_one_worker_is_followed_identically_through_both(two_workers):
    base, log, store = two_workers
    status, answer, _ = call(base, "/api/jobs", "POST", json.dumps(TINY_JOB).encode(), "application/json")
    assert status == 202, answer
    job_id = answer["id"]
    running = ask_both_workers(base, log, f"/api/jobs/{job_id}")
    assert {body["id"] for bodies in running.values() for body in bodies} == {job_id}

    deadline = time.time() + 180
    while call(base, f"/api/jobs/{job_id}")[1]["status"] not in ("succeeded", "failed", "stopped"):
        assert time.time() < deadline, "the job did not end in 3 minutes"
        time.sleep(1)
    ended = ask_both_workers(base, log, f"/api/jobs/{job_id}")
    records = {json.dumps({key: body[key] for key in ("status", "model", "epochs", "started_by")}, sort_keys=True)
               for bodies in ended.values() for body in bodies}
    assert len(records) == 1, records  # both workers give the same record, word for word
    record = json.loads(records.pop())
    assert record["status"] == "succeeded" and len(record["epochs"]) == 1
    models = ask_both_workers(base, log, "/api/models")
    assert all(record["model"] in {m["name"] for m in body["models"]} for bodies in models.values()
               for body in bodies)
    assert (store / record["model"] / "model.keras").is_file()
