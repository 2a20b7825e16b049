"""The features and attribution routes over the Flask test client, with the real background process."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.core.attribution import GradientModels, integrated_gradients
from app.core.features import dead_units
from tests.app_context import refresh_context, served_context


@pytest.fixture
def client(app_state):
    from app.main import server

    yield server.test_client()
    refresh_context()


def test_a_layer_is_computed_once_in_the_background_and_then_served_to_everyone(client, tmp_path):
    url = "/api/models/tiny/features?layer=hidden"
    first = client.get(url)
    assert first.status_code == 202 and first.get_json()["status"] == "running"
    assert client.get(url).status_code == 202  # a second request joins the running job
    deadline = time.time() + 180
    while (response := client.get(url)).status_code == 202 and time.time() < deadline:
        time.sleep(0.5)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    loaded = served_context().store.get("tiny")
    dead = dead_units(loaded.engine, "hidden")
    assert [unit["dead"] for unit in body["units"]] == dead.tolist()
    assert body["kernels"] is None and body["fraction"] == 1.0
    for unit in body["units"]:
        assert np.array(unit["image"]).shape == (6, 6, 1)
        assert unit["dead"] or unit["objective"] >= unit["start_objective"]  # tiny: upstream ReLUs may block it
    stored = list((tmp_path / "state" / "features").glob("*.npz"))
    assert len(stored) == 1 and not list((tmp_path / "state" / "features").glob("*.lock"))
    refresh_context()  # another worker: nothing in memory, the stored file answers at once
    again = client.get(url)
    assert again.status_code == 200 and again.get_json()["units"] == body["units"]
    one = client.get(url + "&unit=1").get_json()
    assert one["source"] == "stored" and one["image"] == body["units"][1]["image"]


def test_one_unit_is_computed_on_demand(client):
    body = client.get("/api/models/mnist-cnn/features?layer=Dense_2&unit=4").get_json()
    assert body["source"] == "computed" and not body["dead"]
    assert body["objective"] > body["start_objective"] + 5
    loaded = served_context().store.get("mnist-cnn")
    image = np.array(body["image"], dtype=np.float32)
    assert image.shape == (28, 28, 1) and loaded.engine.predictions is not None
    assert np.asarray(loaded.model(image[np.newaxis]))[0].argmax() == 4
    dead = int(np.flatnonzero(dead_units(loaded.engine, "Dense_1"))[0])
    body = client.get(f"/api/models/mnist-cnn/features?layer=Dense_1&unit={dead}").get_json()
    assert body["dead"] is True and body["objective"] is None


def test_attribution_routes_answer_every_method(client):
    loaded = served_context().store.get("mnist-cnn")
    for method in ("gradient", "smoothgrad", "gradcam", "integrated_gradients"):
        response = client.get(f"/api/models/mnist-cnn/attribution?image=12&method={method}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["shape"] == [28, 28] and body["class"] == body["predicted"]
        assert body["predicted"] == int(loaded.engine.probabilities(12).argmax())
    body = client.get("/api/models/mnist-cnn/attribution?image=12&method=integrated_gradients&class=9").get_json()
    expected = integrated_gradients(GradientModels(loaded.engine), loaded.images[12], 9)
    assert body["logit_difference"] == pytest.approx(expected.extras["logit_difference"], rel=1e-5)
    assert body["attribution_sum"] == pytest.approx(body["logit_difference"], rel=0.01)
    assert np.sum(body["map"]) == pytest.approx(body["attribution_sum"], rel=1e-3)
    body = client.get("/api/models/mnist-cnn/attribution?image=12&method=gradcam&layer=Conv2D_1").get_json()
    assert body["layer"] == "Conv2D_1"


@pytest.mark.parametrize("query, status", [
    ("features?layer=nope", 404), ("features", 400), ("features?layer=Dense_2&unit=10", 400),
    ("features?layer=Dense_2&unit=１", 400), ("features?layer=Dense_2&unit=-1", 400),
    ("attribution?image=12&method=lime", 400), ("attribution?image=5000", 404), ("attribution", 400),
    ("attribution?image=1&class=10", 400), ("attribution?image=1&method=gradcam&layer=Dense_1", 400),
    ("attribution?image=1&method=gradcam&layer=nope", 404), ("attribution?image=1&method=smoothgrad&noise=nan", 400),
    ("attribution?image=1&method=smoothgrad&samples=100000", 400),
    ("attribution?image=1&method=integrated_gradients&steps=0", 400),
])
def test_bad_parameters_get_a_4xx_that_says_why(client, query, status):
    response = client.get(f"/api/models/mnist-cnn/{query}")
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]
