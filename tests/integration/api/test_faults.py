"""What a hostile afternoon found, through the real API: every answer a 4xx (or a 503 naming the broken part),
valid JSON, and nothing started that should not be."""

from __future__ import annotations

import io
import json
import shutil

import keras
import numpy as np
import pytest

from tests.app_context import refresh_context, served_context
from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder

HOSTILE_CONFIG = {
    "name": "hog", "dataset": "mnist-subset", "pool_size": 0, "conv_layers": [{"filters": 512, "kernel": 1}] * 6,
    "dense_layers": [{"units": 4096}] * 4,
}


@pytest.fixture
def client(app_state, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    refresh_context()
    from app.main import server

    yield server.test_client()
    refresh_context()


def strict_json(response):
    """The body parsed as RFC 8259 JSON: bare NaN or Infinity (which Python's json accepts) fails."""

    def refuse(constant):
        raise AssertionError(f"{constant} in a JSON response")

    return json.loads(response.data, parse_constant=refuse)


def test_oversized_model_is_refused_before_anything_is_built(client):
    response = client.post("/api/jobs", json=HOSTILE_CONFIG)
    assert response.status_code == 400
    errors = " ".join(response.get_json()["errors"])
    assert "parameters" in errors and "Dense_1" in errors and "Conv2D_1" in errors
    assert client.get("/api/jobs").get_json()["jobs"] == []


def test_large_and_deep_bodies_are_refused(client):
    assert client.post("/api/jobs", data=b"{" + b" " * 2_000_000 + b"}",
                       content_type="application/json").status_code == 413
    deep = client.post("/api/jobs", data="[" * 200_000 + "]" * 200_000, content_type="application/json")
    assert deep.status_code == 400 and "deep" in deep.get_json()["errors"][0]
    assert client.get("/healthz").status_code == 200  # and the server keeps serving


def post_chunked(client, path: str, body: bytes):
    """POST ``body`` without a Content-Length, as a chunked request reaches the app from any server (gunicorn and the
    front mark where it ends with ``wsgi.input_terminated``)."""
    return client.post(path, input_stream=io.BytesIO(body), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})


@pytest.mark.parametrize("path", ["/api/jobs", "/_dash-update-component"])
def test_a_chunked_body_over_the_limit_is_a_json_413_not_a_cut_body(client, path):
    body = json.dumps({"output": "x.children", "pad": "a" * 1_200_000}).encode()

    response = post_chunked(client, path, body)

    assert response.status_code == 413 and response.mimetype == "application/json"
    assert response.get_json()["error"] == "the request body is larger than the limit of 1.0 MB (MAX_REQUEST_BYTES)"


def test_a_chunked_body_of_exactly_the_limit_is_read_whole(client):
    body = json.dumps({"dataset": "no-such-set"}).encode().ljust(1_000_000)  # JSON allows trailing spaces

    response = post_chunked(client, "/api/jobs", body)

    assert len(body) == 1_000_000 and response.status_code == 400
    assert "no-such-set" in json.dumps(response.get_json()) and "invalid JSON" not in json.dumps(response.get_json())


def test_a_chunked_body_is_judged_by_its_routes_own_limit(client):
    body = json.dumps({"array": [[0.5] * 28] * 28, "pad": "a" * 1_200_000}).encode()

    response = post_chunked(client, "/api/models/mnist-cnn/inputs", body)  # MAX_IMAGE_BYTES: 10 MB

    assert response.status_code == 201, response.get_json()


def test_config_values_are_parsed_strictly(client):
    response = client.post("/api/jobs", json={"conv_layers": [1, "a", None], "name": "strict"})
    errors = response.get_json()["errors"]
    assert response.status_code == 400 and sum("must be an object" in e for e in errors) == 3
    long_name = client.post("/api/jobs", json={"name": "x", "dataset": "d" * 50_000})
    assert long_name.status_code == 400 and "at most 300 characters" in long_name.get_json()["errors"][0]
    for image in ("１", "1_0", " 1", "1.0", "9223372036854775808"):
        answer = client.get("/api/models/mnist-cnn/predict", query_string={"image": image})
        assert answer.status_code == 400, image
    assert "None" not in client.get("/api/jobs?limit=0").get_json()["error"]


def test_dataset_paths_outside_the_data_folder_get_one_answer(client):
    answers = {
        client.post("/api/jobs", json={"name": "peek", "dataset": path}).get_json()["errors"][0].split(":", 1)[1]
        for path in ("/root/.ssh", "/etc", "/no/such/folder", "../model_store")
    }
    assert len(answers) == 1 and "DATA_DIR" in answers.pop()


def test_job_routes_refuse_bodies_that_are_not_objects_and_absurd_epochs(client):
    store = served_context().job_store
    job = store.create({"name": "recorded"})
    store.claim(job.id, pid=1)
    store.add_probe(job.id, 1, "Conv2D_1", 0, np.ones((2, 2, 1)), np.full(10, 0.1))
    for body in ("[1, 2]", '"stop"', "3", "{"):
        for route in ("stop", "probe"):
            answer = client.post(f"/api/jobs/{job.id}/{route}", data=body, content_type="application/json")
            assert answer.status_code == 400, (route, body)
    assert client.post(f"/api/jobs/{job.id}/stop", json={"save_partial": "yes"}).status_code == 400
    assert client.get(f"/api/jobs/{job.id}/probe?epoch=9223372036854775808").status_code == 400
    assert client.get(f"/api/jobs/{job.id}/probe?epoch=1").status_code == 200
    store.finish(job.id, "failed", error="ended by the test")


def test_non_finite_test_images_are_reported_per_image_in_valid_json(client, app_store):
    keras.backend.clear_session()
    images, labels = tiny_test_set()
    images[3] = np.nan
    write_model_folder(app_store, "nan-model", build_tiny_model(activation="linear"), images, labels)
    broken = strict_json(client.get("/api/models/nan-model/predict?image=3"))
    assert broken["probabilities"] == [None, None, None] and broken["predicted"] is None
    fine = strict_json(client.get("/api/models/nan-model/predict?image=0"))
    listed = {row["image"]: row for row in strict_json(client.get("/api/models/nan-model/images?sort=index"))["images"]}
    assert fine["probabilities"][fine["predicted"]] == pytest.approx(listed[0]["confidence"], rel=1e-6)
    assert max(fine["probabilities"]) < 1.0  # the other images are not re-softmaxed into certainty
    activations = strict_json(client.get("/api/models/nan-model/activations?layer=conv&image=3"))
    assert activations["values"][0][0][0] is None


def test_broken_state_is_a_503_and_health_says_which_part(client, tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "jobs.sqlite3").write_bytes(b"garbage, not sqlite" * 64)
    refresh_context()
    jobs = client.get("/api/jobs")
    assert jobs.status_code == 503 and "job store" in jobs.get_json()["error"]
    health = client.get("/healthz")
    assert health.status_code == 503 and "job_store" in health.get_json()["problems"]
    assert client.get("/api/models/mnist-cnn/predict?image=1").status_code == 200  # exploring still works
    shutil.rmtree(state)
    state.write_text("a file where the state folder should be")
    refresh_context()
    assert client.post("/api/jobs", json={"name": "nowhere"}).status_code == 503
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    refresh_context()
    assert client.get("/api/jobs").status_code == 503 and client.get("/healthz").status_code == 503


def test_linked_and_misnamed_model_folders_are_listed_not_served(client, app_store, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(app_store / "tiny", elsewhere)
    (app_store / "linked").symlink_to(elsewhere)
    (app_store / "bad name").mkdir()
    models = {row["name"]: row for row in client.get("/api/models").get_json()["models"]}
    assert models["linked"]["status"] == "broken" and "outside" in models["linked"]["reason"]
    assert models["bad name"]["status"] == "broken"
    assert client.get("/api/models/linked").status_code == 409
