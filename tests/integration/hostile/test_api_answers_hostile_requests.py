"""Every JSON API route with hostile query parameters, path segments and bodies: a 2xx or a 4xx JSON
``{"error": ...}``, never a 5xx, and the server keeps serving.

POST /api/jobs may receive a valid configuration (mutations of a valid one are among the bodies): the runner
records the job, and the test fixture's launcher ends it at once instead of starting a training process.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.app_context import served_context
from tests.integration.hostile.support import (
    DOMAIN_STRINGS,
    NUMBER_LOOKALIKES,
    captured_errors,
    describe,
    examples,
    near,
    strict_json,
    values,
)

API_LOGGERS = ("app.api.blueprint", "app.main")

# route (with {name} / {job} placeholders) -> valid query parameters
ROUTES = {
    "/healthz": {},
    "/api/models": {},
    "/api/models/{name}": {},
    "/api/models/{name}/activations": {"layer": "Conv2D_3", "image": "3"},
    "/api/models/{name}/predict": {"image": "3"},
    "/api/models/{name}/confusion": {},
    "/api/models/{name}/images": {"true": "4", "predicted": "9", "correct": "wrong", "min_conf": "0.2",
                                  "max_conf": "0.9", "sort": "index"},
    "/api/models/{name}/class-mean": {"layer": "Conv2D_3", "label": "4"},
    "/api/models/{name}/class-difference": {"layer": "Conv2D_3", "a": "4", "b": "9", "top": "5"},
    "/api/models/{name}/top-images": {"layer": "Conv2D_1", "unit": "3", "k": "9", "by": "max"},
    "/api/models/{name}/contributions": {"layer": "Dense_1", "image": "3", "classes": "4,9"},
    "/api/models/{name}/features": {"layer": "Dense_2", "unit": "3"},
    "/api/models/{name}/attribution": {"image": "3", "method": "gradcam", "class": "4", "layer": "Conv2D_2",
                                       "samples": "4", "noise": "0.1", "steps": "8"},
    "/api/jobs": {"limit": "5"},
    "/api/jobs/{job}": {},
    "/api/jobs/{job}/probe": {"epoch": "2"},
}
POST_ROUTES = ["/api/jobs/{job}/stop", "/api/jobs/{job}/probe"]
VALID_CONFIG = {
    "name": "hostile-valid", "dataset": "mnist-subset", "conv_layers": [{"filters": 4, "kernel": 3}],
    "dense_layers": [{"units": 8}], "epochs": 1, "batch_size": 64, "max_train": 128, "max_test": 32,
    "probe_image": 3, "probe_layer": "Conv2D_1",
}

# What a query string can carry: text (no lone surrogates: a client cannot encode them in a URL).
query_text = st.one_of(
    st.sampled_from(NUMBER_LOOKALIKES + DOMAIN_STRINGS + ["4,9", "4", "4,9,1", ",", "1e400", "-0", "0.5", "1e-400"]),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
)
path_segments = st.one_of(
    st.sampled_from(["mnist-cnn", "tiny", "legacy-h5", "corrupt", "no-test-set", "empty", "absent", "..", ".",
                     "a" * 300, "mnist-cnn.", "-x", "%00", "%2e%2e", "%FF", "model.keras", "%EF%BC%91"]),
    # no line breaks: see test_a_path_with_a_line_break_gets_a_json_404
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n"),
            min_size=1, max_size=20).map(lambda text: quote(text, safe="")),
)


def query(valid: dict, data) -> str:
    """The route's parameters, one or more of them hostile, some missing, repeated or unknown."""
    hostile_keys = data.draw(st.sets(st.sampled_from(sorted(valid))), label="hostile keys") if valid else set()
    pairs = [(key, data.draw(query_text, label=key) if key in hostile_keys else value) for key, value in valid.items()]
    pairs = data.draw(st.permutations(pairs), label="order")[: data.draw(st.integers(0, len(pairs)), label="kept")] \
        if data.draw(st.booleans(), label="drop some") else pairs
    pairs += data.draw(st.lists(st.tuples(st.sampled_from([*valid, "x", "", "image[]"]), query_text), max_size=3),
                       label="extra")
    return "?" + urlencode(pairs) if pairs else ""


def check_answer(response, failures) -> None:
    assert response.status_code < 500, (response.status_code, response.data[:300], describe(failures))
    assert not failures, describe(failures)
    if 300 <= response.status_code < 400:  # werkzeug merges "//" in a path with a redirect
        assert response.headers["Location"]
        return
    body = strict_json(response.data)
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"]


@pytest.mark.parametrize("route", list(ROUTES))
@examples(50)
@given(data=st.data())
def test_get_route_answers_hostile_parameters(client, finished_job, route, data):
    name = data.draw(st.one_of(st.just("mnist-cnn"), st.just("tiny"), path_segments), label="name")
    job = data.draw(st.one_of(st.just(finished_job["job"]), path_segments), label="job")
    url = route.format(name=name, job=job) + query(ROUTES[route], data)
    with captured_errors(*API_LOGGERS) as failures:
        response = client.get(url)
    check_answer(response, failures)


bodies = st.one_of(values, near(VALID_CONFIG))


@examples(150)
@given(body=bodies)
def test_starting_a_job_answers_hostile_json(client, launched, body):
    with captured_errors(*API_LOGGERS) as failures:
        response = client.post("/api/jobs", json=body)
    check_answer(response, failures)
    if response.status_code == 202:
        assert response.get_json()["id"] in launched
    assert served_context().job_store.active() is None  # nothing runs: the launcher ended every started job


RAW_BODIES = [
    b"", b"null", b"[]", b"{}", b'"text"', b"NaN", b'{"epochs": NaN}', b'{"epochs": Infinity}', b"{", b"\xff\xfe",
    b'{"name": "\\ud800"}', b"[" * 100 + b"]" * 100, b'{"a":' * 40 + b"1" + b"}" * 40, b"1" * 5000,
    b'{"epochs": 1' + b"0" * 400 + b"}", b'{"epochs": 1e400}', b'{"conv_layers": "32"}', b'{"conv_layers": [1]}',
    b'{"dense_layers": {"units": 3}}', b'{"name": ["a"]}', b'{"epochs": "3"}', b'{"epochs": true}',
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=lambda raw: raw[:20].decode("latin-1"))
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_starting_a_job_answers_malformed_bodies(client, raw, content_type):
    with captured_errors(*API_LOGGERS) as failures:
        response = client.post("/api/jobs", data=raw, content_type=content_type)
    check_answer(response, failures)
    assert served_context().job_store.active() is None


ACTION_BODY = {"image": 7, "layer": "Conv2D_1", "save_partial": True}


@pytest.mark.parametrize("route", POST_ROUTES)
@examples(50)
@given(data=st.data())
def test_job_actions_answer_hostile_json_objects(client, finished_job, route, data):
    job = data.draw(st.one_of(st.just(finished_job["job"]), path_segments), label="job")
    body = data.draw(st.one_of(st.dictionaries(st.sampled_from([*ACTION_BODY, "x"]), values, max_size=4),
                               near(ACTION_BODY).filter(lambda value: isinstance(value, dict))), label="body")
    with captured_errors(*API_LOGGERS) as failures:
        response = client.post(route.format(job=job), json=body)
    check_answer(response, failures)


# A JSON body that is not an object (a list, a string, a number) is a 400, never a .get on it.
@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize("body", [[1], "x", 5, True, 1.5, [{"image": 7}]], ids=repr)
def test_job_actions_answer_json_that_is_not_an_object(client, finished_job, route, body):
    with captured_errors(*API_LOGGERS) as failures:
        response = client.post(route.format(job=finished_job["job"]), json=body)
    check_answer(response, failures)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_unknown_api_routes_are_json_404s(client, method):
    response = client.open("/api/models/mnist-cnn/nope/" + "x" * 500, method=method)
    assert response.status_code == 404
    assert "error" in strict_json(response.data)


# Flask's ``path`` converter does not match a line break, so /api/<path:rest> misses these: the app-level handler
# answers in JSON all the same.
@pytest.mark.parametrize("url", ["/api/jobs/%0A%2F", "/api/models/%0A%2F", "/api/x%0A/y"])
def test_a_path_with_a_line_break_gets_a_json_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "error" in strict_json(response.data)


# int() and float() take full-width digits and underscores; the API's parsers do not (issue 9: strict parsing).
@pytest.mark.parametrize(
    "url",
    [
        "/api/models/mnist-cnn/predict?image=%EF%BC%91",
        "/api/models/mnist-cnn/predict?image=1_0",
        "/api/models/mnist-cnn/activations?layer=Conv2D_1&image=%D9%A3",
        "/api/models/mnist-cnn/images?min_conf=%EF%BC%90.5",
        "/api/models/mnist-cnn/contributions?layer=Dense_1&image=3&classes=%EF%BC%94,9",
        "/api/jobs?limit=1_0",
    ],
)
def test_numbers_in_query_parameters_are_parsed_strictly(client, url):
    response = client.get(url)
    assert response.status_code == 400, response.get_json()


def test_other_methods_are_refused(client):
    for url in ("/api/models/mnist-cnn/nope", "/api/jobs", "/healthz", "/_dash-update-component"):
        assert client.open(url, method="PATCH").status_code == 405


def test_server_keeps_serving_after_hostile_api_requests(client):
    assert client.get("/healthz").get_json()["status"] == "ok"
    body = client.get("/api/models/mnist-cnn/predict?image=42").get_json()
    assert len(body["probabilities"]) == 10
