"""The issue's costly models through the API: refused at upload (4xx, the store unchanged), listed as broken with
the reason when dropped into the store (the listing answers at once, 200), and gradient requests priced before they
start, or run in batches that give the same map."""

from __future__ import annotations

import io
import shutil
import time

import keras
import numpy as np
import pytest

from app.core.attribution import GradientModels, integrated_gradients
from tests.app_context import refresh_context, served_context
from tests.hostile_models import (
    asset_members_file,
    declared_weights_file,
    huge_dense_file,
    many_members_file,
    padded_config_file,
    upsampling_model,
)
from tests.integration.api.test_uploads import store_state, upload


@pytest.fixture
def client(app_state):
    from app.main import server

    yield server.test_client()
    refresh_context()


def npz(shape: tuple[int, ...], n: int = 4) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((n, *shape), np.float32), labels=np.arange(n) % 10)
    return buffer.getvalue()


def upsampling_file(path):
    upsampling_model().save(path)
    return path


# name: (build the model file at a path, the test images' shape, what the refusal says)
HOSTILE = {
    "upsampling": (upsampling_file, (28, 28, 1),
                   "too costly to explore: one image's pass through every layer makes 1.0 GB of activations"),
    "huge-dense": (huge_dense_file, (52, 52, 1), "270,500,000 parameters (1.1 GB); dense/kernel alone is 2704×100000"),
    "padded-config": (lambda path: padded_config_file(path, upsampling_model()), (28, 28, 1),
                      "config.json unpacks to 5.0 MB"),
    "asset-members": (lambda path: asset_members_file(path, upsampling_model()), (28, 28, 1),
                      "members beyond the model's configuration and weights unpack to 24.0 MB"),
    "many-members": (lambda path: many_members_file(path, upsampling_model()), (28, 28, 1), "holds 103 members"),
    "declared-weights": (lambda path: declared_weights_file(path, upsampling_model()), (28, 28, 1),
                         "its weights declare 400.0 MB"),
}


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    """Each hostile model file, built once: name -> (file bytes, test-set bytes, reason)."""
    folder = tmp_path_factory.mktemp("hostile")
    files = {}
    for name, (build, shape, reason) in HOSTILE.items():
        keras.backend.clear_session()
        path = build(folder / f"{name}.keras")
        assert path.stat().st_size < 300_000, name
        files[name] = (path.read_bytes(), npz(shape), reason)
    return files


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_costly_model_upload_is_refused_with_its_cost_and_nothing_is_stored(client, app_store, hostile_files,
                                                                              name):
    model, test_set, reason = hostile_files[name]
    before = store_state(app_store)
    start = time.monotonic()
    response = upload(client, name, model, "model.keras", test_set)
    assert response.status_code == 400, response.get_json()
    assert reason in response.get_json()["error"]
    assert time.monotonic() - start < 20  # the UpSampling model's first view alone took 23 s
    assert store_state(app_store) == before


def test_dropped_in_costly_models_are_listed_broken_with_the_reason(client, app_store, hostile_files):
    for name, (model, test_set, _) in hostile_files.items():
        (app_store / name).mkdir()
        (app_store / name / "model.keras").write_bytes(model)
        (app_store / name / "test_set.npz").write_bytes(test_set)
    start = time.monotonic()
    response = client.get("/api/models")
    assert response.status_code == 200
    assert time.monotonic() - start < 30  # six new models, each refused before a forward pass or Keras' loader
    rows = {row["name"]: row for row in response.get_json()["models"]}
    for name, (_, _, reason) in hostile_files.items():
        assert rows[name]["status"] == "broken" and reason in rows[name]["reason"], rows[name]
        assert rows[name]["cost"] is None
    grid = client.get("/api/models/upsampling/grid?layer=conv&image=0")
    assert grid.status_code == 409 and "1.0 GB of activations" in grid.get_json()["error"]
    mnist = rows["mnist-cnn"]["cost"]
    model = served_context().store.get("mnist-cnn").model  # a Sequential model: every layer's output is known to Keras
    outputs = [np.prod(model.inputs[0].shape[1:])] + [np.prod(layer.output.shape[1:]) for layer in model.layers]
    assert mnist["parameters"] == model.count_params() and mnist["activation_bytes"] == 4 * sum(outputs)
    assert client.get("/api/models/mnist-cnn").get_json()["cost"] == mnist


def test_a_gradient_request_over_the_budget_is_refused_naming_its_cost(client, monkeypatch):
    monkeypatch.setenv("GRADIENT_GFLOPS", "1")  # mnist-cnn: 19 MFLOP per image forward and backward
    refresh_context()
    url = "/api/models/mnist-cnn/attribution?image=3&method="
    response = client.get(url + "integrated_gradients&steps=512")
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(
        "integrated gradients with 512 steps would cost 9.9 GFLOP (513 images × 3 × 6.4 MFLOP per image), the limit "
        "is 1.0 GFLOP (GRADIENT_GFLOPS): this model allows 51 images per request")
    assert "SmoothGrad with 128 samples would cost" in client.get(url + "smoothgrad&samples=128").get_json()["error"]
    assert client.get(url + "integrated_gradients&steps=32").status_code == 200
    unit = client.get("/api/models/mnist-cnn/features?layer=Dense_2&unit=7")  # 128 steps × 3 × 6.4 MFLOP
    assert unit.status_code == 400
    assert unit.get_json()["error"].startswith("the optimal input of unit 7 of Dense_2 (128 steps, one image each; "
                                               "the whole layer's is computed in the background) would cost 2.5 GFLOP")
    assert client.get("/api/models/mnist-cnn/features?layer=Conv2D_1&unit=7").status_code == 200  # 0.2 GFLOP


def test_gradient_work_in_batches_gives_the_maps_of_one_batch(client, monkeypatch):
    monkeypatch.setenv("GRADIENT_MEMORY_MB", "1")  # mnist-cnn: 633 kB per image forward and backward, a batch of 1
    refresh_context()
    loaded = served_context().store.get("mnist-cnn")
    assert served_context().gradient_models.for_model(loaded).plan(17, "x").batch == 1
    body = client.get("/api/models/mnist-cnn/attribution?image=12&method=integrated_gradients&steps=16").get_json()
    expected = integrated_gradients(GradientModels(loaded.engine), loaded.images[12], body["class"], 16)
    np.testing.assert_allclose(body["map"], expected.map, rtol=1e-4, atol=1e-6)
    assert body["attribution_sum"] == pytest.approx(expected.extras["attribution_sum"], rel=1e-4, abs=1e-6)
    models = served_context().gradient_models.for_model(loaded)
    conv = np.prod(loaded.engine.layer("Conv2D_1").output_shape)  # up to it: the input and its maps, ×4 backward
    assert models.batch_size(128, "Conv2D_1") == 10**6 // (4 * 4 * (28 * 28 + conv)) == 2


def test_the_bundled_model_is_admitted_as_before(client, app_store):
    shutil.rmtree(app_store / "corrupt")
    rows = {row["name"]: row for row in client.get("/api/models").get_json()["models"]}
    assert rows["mnist-cnn"]["status"] == "ok" and rows["tiny"]["status"] == "ok"
