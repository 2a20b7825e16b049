"""Requests another site's page makes a logged-in editor's browser send, as the security review sent them (each
with the editor's Basic credentials, which browsers resend cross-site): every one is refused and changes nothing,
on both job engines; the same writes from the instance's own pages and from scripts still work. An instance
without a login answers no host but its own (DNS rebinding)."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile

import pytest
from werkzeug.security import generate_password_hash

from app.jobs.runner import EmbeddedRunner
from tests.app_context import refresh_context, served_context
from tests.conftest import BUNDLED_MODEL
from tests.services_support import redis_server

EDITOR = {"Authorization": "Basic " + base64.b64encode(b"ed:editor-pass-1").decode()}
EVIL = "http://evil.example"
# What a form or a no-cors fetch of evil.example sends: the browser marks it cross-site and names the origin.
CROSS_SITE = {**EDITOR, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
# An older browser without fetch metadata: only the Origin tells.
OLD_BROWSER_CROSS_SITE = {**EDITOR, "Origin": EVIL}
SAME_ORIGIN = {**EDITOR, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
JOB = {"dataset": "mnist-subset", "epochs": 1, "max_train": 64, "max_test": 16, "name": "planted"}
# The form without JavaScript: a text/plain form's one field named '{"dataset":"' with the rest as its value
# gives this body, which JSON reads with the last "dataset" winning.
TEXT_PLAIN_FORM = '{"dataset":"=","dataset":"mnist-subset","epochs":1,"name":"planted"}'


@pytest.fixture(params=["sqlite", "redis"])
def editor_app(request, tmp_path, monkeypatch):
    """The app with a login (one editor), on the SQLite or the Redis job engine; a job that got through would be
    recorded in the job store (which the test reads) but never trained."""
    store = tmp_path / "store"
    shutil.copytree(BUNDLED_MODEL, store / "mnist-cnn")
    users = tmp_path / "users"
    users.write_text(f"ed:{generate_password_hash('editor-pass-1', 'pbkdf2:sha256:1000')}:editor\n")
    monkeypatch.setenv("MODEL_STORE", str(store))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AUTH_USERS_FILE", str(users))
    monkeypatch.delenv("AUTH_USERS", raising=False)
    monkeypatch.delenv("READ_ONLY", raising=False)
    monkeypatch.setattr(EmbeddedRunner, "_launch", lambda _runner, _job: None)
    with redis_server() if request.param == "redis" else _no_service() as url:
        if url:
            monkeypatch.setenv("REDIS_URL", url)
        else:
            monkeypatch.delenv("REDIS_URL", raising=False)
        refresh_context()
        from app.main import server

        yield server.test_client(), store
        refresh_context()


class _no_service:
    def __enter__(self):
        return None

    def __exit__(self, *_):
        return False


def model_form() -> tuple[dict, str]:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in (BUNDLED_MODEL).iterdir():
            bundle.write(path, path.name)
    return {"name": "planted", "model": (io.BytesIO(archive.getvalue()), "model.zip")}, "multipart/form-data"


def attacks(job_id: str) -> dict[str, dict]:
    """The review's cross-site writes, by name: method, path, body, content type, headers."""
    return {
        "start a job, text/plain": dict(method="POST", path="/api/jobs", data=json.dumps(JOB),
                                        content_type="text/plain", headers=CROSS_SITE),
        "start a job, form-encoded": dict(method="POST", path="/api/jobs", data=json.dumps(JOB),
                                          content_type="application/x-www-form-urlencoded", headers=CROSS_SITE),
        "start a job, form without JavaScript": dict(method="POST", path="/api/jobs", data=TEXT_PLAIN_FORM,
                                                     content_type="text/plain", headers=CROSS_SITE),
        "start a job, old browser": dict(method="POST", path="/api/jobs", data=json.dumps(JOB),
                                         content_type="text/plain", headers=OLD_BROWSER_CROSS_SITE),
        "stop a job, empty form": dict(method="POST", path=f"/api/jobs/{job_id}/stop", data="",
                                       content_type="application/x-www-form-urlencoded", headers=CROSS_SITE),
        "upload a model, no-cors multipart": dict(method="POST", path="/api/models", data=model_form()[0],
                                                  content_type="multipart/form-data", headers=CROSS_SITE),
        "delete a model": dict(method="DELETE", path="/api/models/mnist-cnn", headers=OLD_BROWSER_CROSS_SITE),
        "a callback": dict(method="POST", path="/_dash-update-component", data="{}", content_type="text/plain",
                           headers=CROSS_SITE),
    }


def test_cross_site_writes_are_refused_and_change_nothing(editor_app):
    client, store = editor_app
    job = served_context().job_store.create({"name": "running-one"}, started_by="ed")  # a job they would stop
    for name, attack in attacks(job.id).items():
        response = client.open(**attack)
        assert response.status_code == 403, (name, response.status_code, response.get_data()[:200])
        assert "refused" in response.get_json()["error"], name
    assert [j.id for j in served_context().job_store.list(10)] == [job.id]
    assert served_context().job_store.get(job.id).status == job.status
    assert sorted(p.name for p in store.iterdir()) == ["mnist-cnn"]


def test_the_same_writes_from_the_instance_itself_or_a_script_still_work(editor_app):
    client, store = editor_app
    # from the app's own pages: the routes are reached (an invalid config is a 400, an unknown job a 404)
    assert client.post("/api/jobs", json={"epochs": 0}, headers=SAME_ORIGIN).status_code == 400
    assert client.post("/api/jobs/nope/stop", headers=SAME_ORIGIN).status_code == 404
    # a script (curl): no Origin, no fetch metadata
    started = client.post("/api/jobs", json=JOB, headers=EDITOR)
    assert started.status_code == 202, started.get_json()
    assert client.post(f"/api/jobs/{started.get_json()['id']}/stop", headers=EDITOR).status_code == 200
    form, content_type = model_form()
    assert client.post("/api/models", data=form, content_type=content_type, headers=SAME_ORIGIN).status_code == 201
    assert (store / "planted").is_dir()


def test_bodies_that_are_not_json_are_refused_whoever_sends_them(editor_app):
    """A form can send text/plain and form-encoded bodies; the JSON routes take JSON only (415), even from a
    script or the instance's own origin."""
    client, _ = editor_app
    for headers in (EDITOR, SAME_ORIGIN):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = client.post("/api/jobs", data=TEXT_PLAIN_FORM, content_type=content_type, headers=headers)
            assert response.status_code == 415, (content_type, response.get_json())
        empty_form = client.post("/api/jobs/nope/stop", data="", content_type="application/x-www-form-urlencoded",
                                 headers=headers)
        assert empty_form.status_code == 415
    assert served_context().job_store.list(10) == []


@pytest.fixture
def open_app(tmp_path, monkeypatch):
    """An instance without a login, as `make run` starts it."""
    shutil.copytree(BUNDLED_MODEL, tmp_path / "store" / "mnist-cnn")
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    for key in ("AUTH_USERS", "AUTH_USERS_FILE", "REDIS_URL", "ALLOWED_HOSTS", "HOST"):
        monkeypatch.delenv(key, raising=False)
    refresh_context()
    from app.main import server

    yield server.test_client(), monkeypatch
    refresh_context()


def test_an_instance_answers_only_to_its_own_host_names(open_app):
    client, monkeypatch = open_app
    for path in ("/", "/api/models", "/api/models/mnist-cnn/predict?image=1", "/_dash-layout"):
        assert client.get(path, headers={"Host": "localhost:8050"}).status_code == 200, path
        assert client.get(path, headers={"Host": "127.0.0.1:8050"}).status_code == 200, path
        rebound = client.get(path, headers={"Host": "rebind.evil.example:8050"})
        assert rebound.status_code == 400 and "ALLOWED_HOSTS" in rebound.get_json()["error"], path
    assert client.post("/api/jobs", json=JOB, headers={"Host": "rebind.evil.example"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "10.0.0.7:8050"}).status_code == 200  # a load balancer's probe
    monkeypatch.setenv("ALLOWED_HOSTS", "explorer.example.org")
    refresh_context()
    assert client.get("/api/models", headers={"Host": "explorer.example.org"}).status_code == 200
    assert client.get("/api/models", headers={"Host": "localhost"}).status_code == 400
