"""An instance without a login, through the real Flask app: on a loopback ``HOST`` anyone writes (``make run``);
served on another address, every write is refused with 403 and a JSON message, unless ``ALLOW_ANONYMOUS_WRITES=1``
opts in. The route families and their requests are test_access's; here every one is asked without credentials.
"""

from __future__ import annotations

import shutil

import pytest

from app.auth.gate import ANONYMOUS_WRITES_OFF
from app.jobs.runner import EmbeddedRunner
from app.main import server
from app.views.train_form import default_form
from tests.app_context import refresh_context, served_context
from tests.conftest import BUNDLED_MODEL
from tests.integration.test_access import (
    FAMILIES,
    Unreadable,
    callback_body,
    callback_key,
    click,
    families,
    form_states,
    router_body,
)

# instance -> its environment (no login in any of them)
INSTANCES = {
    "loopback": {"HOST": "127.0.0.1"},
    "exposed": {"HOST": "0.0.0.0"},
    "exposed, opted in": {"HOST": "0.0.0.0", "ALLOW_ANONYMOUS_WRITES": "1"},
}
REFUSED = "exposed"


@pytest.fixture(scope="module", params=INSTANCES)
def instance(request, tmp_path_factory):
    """The app configured as one of :data:`INSTANCES`; yields its name and a test client. Jobs are queued, never
    trained."""
    root = tmp_path_factory.mktemp("anonymous")
    shutil.copytree(BUNDLED_MODEL, root / "store" / "mnist-cnn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STORE", str(root / "store"))
        patch.setenv("STATE_DIR", str(root / "state"))
        for key in ("REDIS_URL", "AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY", "ALLOWED_HOSTS",
                    "ALLOW_ANONYMOUS_WRITES"):
            patch.delenv(key, raising=False)
        for key, value in INSTANCES[request.param].items():
            patch.setenv(key, value)
        patch.setattr(EmbeddedRunner, "_launch", lambda _runner, _job: None)
        refresh_context()
        client = server.test_client()
        client.get("/healthz")  # Dash registers its callbacks at the first request
        yield request.param, client
    refresh_context()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_route_family_answers_an_anonymous_visitor_as_the_instance_allows(instance, family):
    name, client = instance
    method, path, body, writes, allowed = families()[family]
    if path == "component-suite":
        pytest.skip("a GET like the assets: no write to judge")
    jobs_before = served_context().job_store.list()
    response = client.open(path, method=method, json=body)
    if writes and name == REFUSED:
        assert response.status_code == 403
        assert response.get_json() == {"error": ANONYMOUS_WRITES_OFF}
    else:
        assert response.status_code == allowed, response.get_data(as_text=True)[:300]
    assert served_context().job_store.list() == jobs_before  # the allowed writes ask for nothing that changes a thing


def test_the_refusal_follows_the_configured_host_not_the_host_a_request_names(instance):
    name, client = instance
    for host in ("localhost", "127.0.0.1", "[::1]"):
        response = client.delete("/api/models/no-such-model", headers={"Host": host})
        assert response.status_code == (403 if name == REFUSED else 404), host


def test_an_api_write_is_refused_before_its_body_is_read(instance):
    name, client = instance
    if name != REFUSED:
        pytest.skip("the body of an allowed write is read")
    for path in ("/api/jobs", "/api/jobs/x/stop", "/api/models"):
        response = client.open(path, method="POST", input_stream=Unreadable(),
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 403, path


def test_real_writes_change_the_store_only_where_anonymous_writes_are_allowed(instance):
    name, client = instance
    start = callback_body(callback_key("on_start"), [click("train-start")],
                          form_states({**default_form(), "name": "anonymous-run", "epochs": 1}))
    started = client.post("/_dash-update-component", json=start)
    queued = served_context().job_store.list()
    if name == REFUSED:
        assert started.status_code == 403 and started.get_json() == {"error": ANONYMOUS_WRITES_OFF}
        assert queued == []
    else:
        assert started.status_code == 200 and "started" in started.get_data(as_text=True)
        (job,) = queued
        served_context().job_store.finish(job.id, "stopped")

    deleted = client.delete("/api/models/mnist-cnn")
    assert deleted.status_code == (403 if name == REFUSED else 204)
    assert served_context().store.holds("mnist-cnn") is (name == REFUSED)
    if name != REFUSED:
        shutil.copytree(BUNDLED_MODEL, served_context().settings.model_store / "mnist-cnn")


def test_the_pages_say_writes_are_off_where_the_controls_would_be(instance):
    name, client = instance
    refused = name == REFUSED
    train_page = client.post("/_dash-update-component", json=router_body("/train")).get_data(as_text=True)
    assert ('"id":"train-read-only"' in train_page) is refused
    assert ("Writes are off" in train_page) is refused
    models_page = client.post("/_dash-update-component", json=router_body("/models")).get_data(as_text=True)
    assert ('"id":"models-read-only"' in models_page) is refused
    assert ("Writes are off" in models_page) is refused
    assert ('"id":"model-upload-form"' in models_page) is not refused
    assert ('"type":"models-delete"' in models_page) is not refused
