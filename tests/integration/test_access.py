"""Who may do what, route family by route family, through the real Flask app (issue 10, part 1).

Three instances: with a login (a users file with an editor and a viewer, plus an ``AUTH_USERS`` editor), the same
with ``READ_ONLY=1``, and a read-only instance without a login. Each route family is asked with no credentials,
the malformed headers that were 500s under dash-auth, a wrong password, an unknown user, a viewer and the editors.
The README's table of route families is this matrix.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import shutil

import pytest
from werkzeug.security import generate_password_hash

from app.auth.gate import callback_output_ids
from app.jobs.runner import EmbeddedRunner
from app.main import WRITE_CALLBACK_OUTPUTS, app, server
from app.ui.training_form import FIELD
from app.views.train_form import default_form
from tests.app_context import refresh_context, served_context
from tests.conftest import BUNDLED_MODEL

FAST = "pbkdf2:sha256:1000"  # werkzeug's default, scrypt, costs ~0.2 s per check; the method does not matter here
PASSWORDS = {"alice": "wonderland-7", "bob": "builder-bob-9", "carol": "quick-carol-3"}


def basic(raw: bytes | str) -> str:
    return "Basic " + base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


CREDENTIALS = {
    "none": None,
    "Bearer x": "Bearer x",
    "Basic !!!": "Basic !!!",
    "no colon": basic("alicewonderland-7"),
    "not UTF-8": basic(b"\xff\xfe:\xfa\xfb"),
    "lowercase basic": "basic " + basic("alice:wonderland-7").split()[1],
    "Basic, no token": "Basic",
    "wrong password": basic("alice:wonderland-8"),
    "unknown user": basic("mallory:wonderland-7"),
    "viewer": basic("bob:builder-bob-9"),
    "editor": basic("alice:wonderland-7"),
    "AUTH_USERS editor": basic("carol:quick-carol-3"),
}
MALFORMED = ("Bearer x", "Basic !!!", "no colon", "not UTF-8", "lowercase basic", "Basic, no token")
EDITORS = ("editor", "AUTH_USERS editor")
LOGGED_IN = ("viewer", *EDITORS)


DRAWING = {"strokes": [[[100, 40], [180, 40], [130, 140], [110, 240]]], "width": 18, "size": 280}  # a 7


def callback_key(function_name: str, module: str = "app.pages.train") -> str:
    """The output key Dash dispatches the callback ``module.function_name`` on."""
    for key, spec in app.callback_map.items():
        function = getattr(spec.get("callback"), "__wrapped__", None)
        if function is not None and function.__name__ == function_name and function.__module__ == module:
            return key
    raise LookupError(function_name)


def callback_body(key: str, inputs: list[dict], state: list[dict] | None = None) -> dict:
    """A callback request as Dash's renderer sends it."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]} for part in parts]
    return {"output": key, "outputs": outputs if key.startswith("..") else outputs[0], "inputs": inputs,
            "state": state or [], "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}


def form_states(values: dict | None = None) -> list[dict]:
    values = values or {}
    return [{"id": field_id, "property": "value", "value": values.get(key)} for key, field_id in FIELD.items()]


def click(component_id: str) -> dict:
    return {"id": component_id, "property": "n_clicks", "value": 1}


def router_body(pathname: str) -> dict:
    return callback_body(callback_key("update", "dash.dash"),
                         [{"id": "_pages_location", "property": "pathname", "value": pathname},
                          {"id": "_pages_location", "property": "search", "value": ""}])


def families() -> dict[str, tuple[str, str, dict | None, bool, int]]:
    """Route family -> (method, path, JSON body, writes?, status for a user allowed to do it).

    The write requests are ones that change nothing even when allowed: an invalid form, an unknown job. Built
    after the app's first request (Dash registers its callbacks then).
    """
    view = {"id": "train-view", "property": "data", "value": None}
    return {
        "GET /": ("GET", "/", None, False, 200),
        "GET /compare": ("GET", "/compare?model=mnist-cnn&images=1,2", None, False, 200),
        "GET /no-such-page": ("GET", "/no-such-page", None, False, 200),
        "GET /_dash-layout": ("GET", "/_dash-layout", None, False, 200),
        "GET /_dash-dependencies": ("GET", "/_dash-dependencies", None, False, 200),
        "callback: page content (read)": ("POST", "/_dash-update-component", router_body("/train"), False, 200),
        "callback: jobs table (read)": (
            "POST", "/_dash-update-component",
            callback_body(callback_key("on_tick"), [{"id": "train-interval", "property": "n_intervals", "value": 1},
                                                    {"id": "train-pin", "property": "data", "value": None}], [view]),
            False, 200),
        "callback: start (write)": (
            "POST", "/_dash-update-component",
            callback_body(callback_key("on_start"), [click("train-start")], form_states()), True, 200),
        "callback: stop (write)": (
            "POST", "/_dash-update-component",
            callback_body(callback_key("on_stop"), [click("train-stop")],
                          [view, {"id": "train-save-partial", "property": "value", "value": False}]), True, 200),
        "callback: probe (write)": (
            "POST", "/_dash-update-component",
            callback_body(callback_key("on_probe_now"), [click("train-probe-now")],
                          [{"id": FIELD["probe_image"], "property": "value", "value": 1},
                           {"id": FIELD["probe_layer"], "property": "value", "value": "Conv2D_1"}, view]), True, 200),
        "callback: delete a model (write)": (
            "POST", "/_dash-update-component",
            callback_body(callback_key("delete_confirmed", "app.pages.models"),
                          [{"id": "models-confirm-delete", "property": "submit_n_clicks", "value": 1}],
                          [{"id": "models-pending-delete", "property": "data", "value": "no-such-model"}]),
            True, 200),
        "GET /api/models": ("GET", "/api/models", None, False, 200),
        "GET /api/models/mnist-cnn/predict": ("GET", "/api/models/mnist-cnn/predict?image=1", None, False, 200),
        "GET /api/jobs": ("GET", "/api/jobs", None, False, 200),
        "POST /api/jobs": ("POST", "/api/jobs", {"epochs": 0}, True, 400),
        "POST /api/jobs/x/stop": ("POST", "/api/jobs/x/stop", {}, True, 404),
        "POST /api/jobs/x/probe": ("POST", "/api/jobs/x/probe", {}, True, 404),
        "GET /api/models/mnist-cnn/report": ("GET", "/api/models/mnist-cnn/report", None, False, 200),
        # drawing a digit is a view-level action: viewers and read-only instances may, anonymous users may not
        "POST /api/models/mnist-cnn/inputs": ("POST", "/api/models/mnist-cnn/inputs", DRAWING, False, 201),
        # a model comes as a multipart form: JSON is refused before it is read
        "POST /api/models": ("POST", "/api/models", {"name": "not-a-form"}, True, 415),
        "DELETE /api/models/no-such-model": ("DELETE", "/api/models/no-such-model", None, True, 404),
        "GET /assets/explorer.js": ("GET", "/assets/explorer.js", None, False, 200),
        "GET /_dash-component-suites/…": ("GET", "component-suite", None, False, 200),
        "GET /_favicon.ico": ("GET", "/_favicon.ico", None, False, 200),
        "GET /healthz": ("GET", "/healthz", None, False, 200),
        "HEAD /healthz": ("HEAD", "/healthz", None, False, 200),
    }


INSTANCES = ("login", "login, READ_ONLY", "no login, READ_ONLY")
WITH_LOGIN = pytest.mark.parametrize("instance", INSTANCES[:2], indirect=True)


def expected(instance: str, credential: str, family: str, writes: bool, allowed: int) -> int:
    if family.endswith("/healthz"):
        return 200
    if instance != "no login, READ_ONLY" and credential not in LOGGED_IN:
        return 401
    may_write = instance == "login" and credential in EDITORS
    return 403 if writes and not may_write else allowed


@pytest.fixture(scope="module", params=INSTANCES)
def instance(request, tmp_path_factory):
    """The app configured as one of :data:`INSTANCES`; yields its name and a test client."""
    root = tmp_path_factory.mktemp("access")
    shutil.copytree(BUNDLED_MODEL, root / "store" / "mnist-cnn")
    users = root / "users"
    users.write_text(f"alice:{generate_password_hash(PASSWORDS['alice'], FAST)}:editor\n"
                     f"bob:{generate_password_hash(PASSWORDS['bob'], FAST)}:viewer\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_STORE", str(root / "store"))
        patch.setenv("STATE_DIR", str(root / "state"))
        patch.delenv("REDIS_URL", raising=False)
        # a write that got through by mistake queues a job but never trains (the fixture's end checks for any)
        patch.setattr(EmbeddedRunner, "_launch", lambda _runner, _job: None)
        if request.param.startswith("login"):
            patch.setenv("AUTH_USERS_FILE", str(users))
            patch.setenv("AUTH_USERS", f"carol:{PASSWORDS['carol']}")
        else:
            patch.delenv("AUTH_USERS_FILE", raising=False)
            patch.delenv("AUTH_USERS", raising=False)
        patch.setenv("READ_ONLY", "1" if "READ_ONLY" in request.param else "0")
        refresh_context()
        client = server.test_client()
        client.get("/healthz")  # Dash registers its callbacks at the first request
        yield request.param, client
    refresh_context()


def component_suite(client) -> str:
    page = client.get("/", headers={"Authorization": CREDENTIALS["editor"]}).get_data(as_text=True)
    return re.search(r'src="(/_dash-component-suites/[^"]+\.js)"', page).group(1)


FAMILIES = (
    "GET /", "GET /compare", "GET /no-such-page", "GET /_dash-layout", "GET /_dash-dependencies",
    "callback: page content (read)", "callback: jobs table (read)", "callback: start (write)",
    "callback: stop (write)", "callback: probe (write)", "callback: delete a model (write)", "GET /api/models",
    "GET /api/models/mnist-cnn/predict",
    "GET /api/jobs", "POST /api/jobs", "POST /api/jobs/x/stop", "POST /api/jobs/x/probe",
    "GET /api/models/mnist-cnn/report", "POST /api/models/mnist-cnn/inputs", "POST /api/models",
    "DELETE /api/models/no-such-model",
    "GET /assets/explorer.js", "GET /_dash-component-suites/…", "GET /_favicon.ico",
    "GET /healthz", "HEAD /healthz",
)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_route_family_answers_as_the_credentials_allow(instance, family):
    name, client = instance
    assert tuple(families()) == FAMILIES
    method, path, body, writes, allowed = families()[family]
    path = component_suite(client) if path == "component-suite" else path
    seen, wanted = {}, {}
    for credential, header in CREDENTIALS.items():
        headers = {"Authorization": header} if header else {}
        response = client.open(path, method=method, json=body, headers=headers)
        seen[credential] = response.status_code
        wanted[credential] = expected(name, credential, family, writes, allowed)
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"].startswith('Basic realm="CNN Activation Explorer"')
        if response.status_code == 403:
            assert "read-only" in response.get_json()["error"] or "needs an editor" in response.get_json()["error"]
    assert seen == wanted
    assert served_context().job_store.list() == []  # not even the allowed writes changed anything


def pathname_bypass_bodies():
    """The issue's bypass: any callback, its first input renamed ``pathname`` and set to a public route."""
    for key in sorted(app.callback_map):
        if "callback" not in app.callback_map[key]:
            continue  # clientside
        for route in ("/healthz", "/", "/_dash-layout", "/assets/explorer.js", "/api/models"):
            body = callback_body(key, [{"id": "train-start", "property": "pathname", "value": route}],
                                 form_states({**{"epochs": 1, "name": "bypass"}}))
            yield key, route, body


@WITH_LOGIN
def test_the_pathname_bypass_of_any_callback_with_any_public_route_is_401(instance):
    _, client = instance
    answers = {}
    for key, route, body in pathname_bypass_bodies():
        for credential in ("none", *MALFORMED, "wrong password"):
            headers = {"Authorization": CREDENTIALS[credential]} if CREDENTIALS[credential] else {}
            answers[(key, route, credential)] = client.post("/_dash-update-component", json=body,
                                                            headers=headers).status_code
    assert len(answers) > 400 and set(answers.values()) == {401}
    assert served_context().job_store.list() == []


def test_viewers_and_read_only_instances_get_a_note_instead_of_the_training_and_upload_forms(instance):
    name, client = instance
    for credential in ("viewer", *EDITORS):
        response = client.post("/_dash-update-component", json=router_body("/train"),
                               headers={"Authorization": CREDENTIALS[credential]})
        page = response.get_data(as_text=True)
        writer = name == "login" and credential in EDITORS
        assert ('"id":"train-read-only"' in page) is not writer, credential
        if not writer:
            assert ("read-only" if "READ_ONLY" in name else "Signed in as bob (viewer)") in page
        models_page = client.post("/_dash-update-component", json=router_body("/models"),
                                  headers={"Authorization": CREDENTIALS[credential]}).get_data(as_text=True)
        assert ('"id":"models-read-only"' in models_page) is not writer, credential
        assert ('"id":"model-upload-form"' in models_page) is writer, credential
        assert ('"type":"models-delete"' in models_page) is writer, credential


class Unreadable(io.RawIOBase):
    """A 300 MB request body that fails the test if anyone reads a byte of it (the test client measures its size
    by seeking)."""

    size = 300 * 10**6

    def __init__(self):
        super().__init__()
        self.position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence] + offset
        return self.position

    def tell(self):
        return self.position

    def readinto(self, buffer):
        raise AssertionError("the body of an unauthenticated request was read")


@WITH_LOGIN
@pytest.mark.parametrize("path", ["/_dash-update-component", "/api/jobs", "/api/jobs/x/stop", "/",
                                  "/api/models/mnist-cnn/inputs"])
def test_an_unauthenticated_body_is_never_read(instance, path):
    _, client = instance
    for credential in ("none", "Basic !!!", "wrong password"):
        headers = {"Content-Type": "application/json"}
        if CREDENTIALS[credential]:
            headers["Authorization"] = CREDENTIALS[credential]
        response = client.open(path, method="POST", input_stream=Unreadable(), headers=headers)
        assert response.status_code == 401


@WITH_LOGIN
def test_a_viewers_write_to_the_api_is_refused_unread_and_a_callback_body_is_bounded(instance):
    _, client = instance
    headers = {"Authorization": CREDENTIALS["viewer"], "Content-Type": "application/json"}
    assert client.open("/api/jobs", method="POST", input_stream=Unreadable(), headers=headers).status_code == 403
    big = client.post("/_dash-update-component", data=b'{"output": "' + b"x" * 2_000_000 + b'"}',
                      content_type="application/json", headers={"Authorization": CREDENTIALS["viewer"]})
    assert big.status_code == 413
    drawing = client.open("/api/models/mnist-cnn/inputs", method="POST", input_stream=Unreadable(), headers=headers)
    assert drawing.status_code == 413 and "MAX_IMAGE_BYTES" in drawing.get_json()["error"]  # sized, unread
    odd = client.post("/_dash-update-component", data=b'["not an object"]', content_type="application/json",
                      headers={"Authorization": CREDENTIALS["viewer"]})
    assert odd.status_code == 400


def test_every_callback_that_writes_is_judged_a_write():
    """A callback that calls the job runner's start, stop or change_probe, or the store's delete or save (or the
    delete use case), must have a write output: otherwise a viewer could call it."""
    server.test_client().get("/healthz")
    writes, judged = set(), set()
    for key, spec in app.callback_map.items():
        function = getattr(spec.get("callback"), "__wrapped__", None)
        if function is None:
            continue
        names = set(function.__code__.co_names)
        if "job_runner" in names and names & {"start", "stop", "change_probe", "submit"}:
            writes.add(function.__name__)
        if ("store" in names and names & {"delete", "save"}) or "delete_model" in names:
            writes.add(function.__name__)
        if callback_output_ids(key) & WRITE_CALLBACK_OUTPUTS:
            judged.add(function.__name__)
    assert writes == judged == {"on_start", "on_stop", "on_probe_now", "delete_confirmed"}


def test_no_secret_reaches_the_logs(instance, caplog):
    name, client = instance
    caplog.set_level(logging.DEBUG)
    secrets = [*PASSWORDS.values(), "wonderland-8", *(basic(f"{user}:{password}").split()[1]
                                                    for user, password in PASSWORDS.items())]
    secrets += [account.password_hash for account in served_context().settings.accounts]
    for header in CREDENTIALS.values():
        headers = {"Authorization": header} if header else {}
        client.get("/api/models", headers=headers)
        client.post("/api/jobs", json={"epochs": -1}, headers=headers)
        client.post("/_dash-update-component", json={"output": "nonsense"}, headers=headers)  # a logged failure
    if name != "no login, READ_ONLY":
        assert "login failed" in caplog.text  # the failures were logged: the check below is not vacuous
    for secret in secrets:
        assert secret not in caplog.text


@pytest.fixture
def login_client(app_store, tmp_path, monkeypatch):
    """The app with a login (alice editor, bob viewer in a users file; carol an AUTH_USERS editor); jobs are queued
    but never trained."""
    users = tmp_path / "users"
    users.write_text(f"alice:{generate_password_hash(PASSWORDS['alice'], FAST)}:editor\n"
                     f"bob:{generate_password_hash(PASSWORDS['bob'], FAST)}:viewer\n")
    monkeypatch.setenv("AUTH_USERS_FILE", str(users))
    monkeypatch.setenv("AUTH_USERS", f"carol:{PASSWORDS['carol']}")
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("READ_ONLY", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(EmbeddedRunner, "_launch", lambda _runner, _job: None)
    refresh_context()
    client = server.test_client()
    client.get("/healthz")
    yield client
    refresh_context()


def test_the_issues_bypass_starts_nothing_and_a_job_records_who_started_it(login_client):
    valid = {**default_form(), "name": "by-carol", "epochs": 1}
    bypass = callback_body(callback_key("on_start"), [{"id": "train-start", "property": "pathname",
                                                       "value": "/healthz"}], form_states(valid))
    assert login_client.post("/_dash-update-component", json=bypass).status_code == 401
    assert login_client.post("/_dash-update-component", json=bypass,
                             headers={"Authorization": CREDENTIALS["viewer"]}).status_code == 403
    assert served_context().job_store.list() == []

    started = login_client.post("/_dash-update-component", json=bypass,
                                headers={"Authorization": CREDENTIALS["AUTH_USERS editor"]})
    assert started.status_code == 200 and "started" in started.get_data(as_text=True)
    (job,) = served_context().job_store.list()
    assert job.started_by == "carol"
    tick = callback_body(callback_key("on_tick"), [{"id": "train-interval", "property": "n_intervals", "value": 1},
                                                   {"id": "train-pin", "property": "data", "value": None}],
                         [{"id": "train-view", "property": "data", "value": None}])
    for credential in ("viewer", "editor"):  # everyone sees who started it, in the status line and the jobs table
        shown = login_client.post("/_dash-update-component", json=tick,
                                  headers={"Authorization": CREDENTIALS[credential]}).get_data(as_text=True)
        assert "started by carol" in shown and '"children":"carol"' in shown
    served_context().job_store.request_stop(job.id)

    api = login_client.post("/api/jobs", json={"name": "by-alice", "epochs": 1},
                            headers={"Authorization": CREDENTIALS["editor"]})
    assert api.status_code == 202
    detail = login_client.get(api.get_json()["url"], headers={"Authorization": CREDENTIALS["viewer"]}).get_json()
    assert detail["started_by"] == "alice"
    assert login_client.post(f"{api.get_json()['url']}/stop",
                             headers={"Authorization": CREDENTIALS["viewer"]}).status_code == 403
    assert login_client.post(f"{api.get_json()['url']}/stop",
                             headers={"Authorization": CREDENTIALS["editor"]}).status_code == 200
