"""The JSON API over the real app and store: answers equal Keras' own computation; bad input is a 4xx JSON."""

import io
import shutil
import time
import zipfile

import keras
import numpy as np
import pytest


@pytest.fixture
def client(app_store):
    from app.main import server

    return server.test_client()


def test_health_and_model_list_with_broken_models(client):
    assert client.get("/healthz").get_json()["status"] == "ok"
    models = {row["name"]: row for row in client.get("/api/models").get_json()["models"]}
    assert models["mnist-cnn"]["status"] == "ok" and models["mnist-cnn"]["metrics"]["test_accuracy"] >= 0.97
    assert models["tiny"]["status"] == "ok" and models["legacy-h5"]["status"] == "ok"
    for name in ("corrupt", "no-test-set", "empty"):
        assert models[name]["status"] == "broken" and models[name]["reason"]


def test_the_default_model_opened_in_the_background_is_warm_and_health_says_when(client):
    from tests.app_context import served_context

    context = served_context()
    assert client.get("/healthz").get_json()["warm"] is False
    context.open_default_model_in_background().join(60)
    assert client.get("/healthz").get_json()["warm"] is True
    loaded = context.store.get("mnist-cnn")
    # its first view runs no new pass: the layer pages open on and the scores are kept
    assert loaded.engine.is_cached(0) and loaded.engine.probe_runs_xla is not None


def test_model_details_match_the_blog_architecture(client):
    body = client.get("/api/models/mnist-cnn").get_json()
    shapes = {layer["name"]: layer["output_shape"] for layer in body["layers"]}
    assert shapes["Conv2D_1"] == [26, 26, 32] and shapes["Conv2D_2"] == [11, 11, 64]
    assert shapes["Conv2D_3"] == [3, 3, 128] and shapes["Dense_1"] == [100]
    assert body["test_set_size"] == 1000 and body["class_names"] == [str(i) for i in range(10)]
    assert {layer["type"] for layer in body["layers"]} >= {"Conv2D", "MaxPooling2D", "Flatten", "Dense"}


@pytest.mark.parametrize(("layer", "units"), [("Conv2D_1", 32), ("Conv2D_2", 64), ("Conv2D_3", 128), ("Dense_1", 100)])
def test_activations_equal_truncated_keras_model(client, app_store, layer, units):
    body = client.get(f"/api/models/mnist-cnn/activations?layer={layer}&image=42").get_json()
    values = np.array(body["values"], dtype=np.float32)
    assert list(values.shape) == body["shape"] and values.shape[-1] == units
    model = keras.saving.load_model(app_store / "mnist-cnn" / "model.keras")
    images = np.load(app_store / "mnist-cnn" / "test_set.npz")["images"]
    want = np.asarray(keras.Model(model.inputs, model.get_layer(layer).output)(images[42:43]))[0]
    np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-5)


def test_predict(client):
    body = client.get("/api/models/mnist-cnn/predict?image=3").get_json()
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["predicted"] == int(np.argmax(body["probabilities"])) and 0 <= body["label"] <= 9


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/models/nope", 404, "no model named 'nope'"),
        ("/api/models/..%2F..%2Fetc", 404, "no API route"),
        ("/api/models/bad$name", 400, "invalid model name"),
        ("/api/models/corrupt", 409, "cannot load model.keras"),
        ("/api/models/no-test-set/predict?image=0", 409, "no test set"),
        ("/api/models/mnist-cnn/activations?layer=nope&image=1", 404, "has no layer 'nope'"),
        ("/api/models/mnist-cnn/activations?image=1", 400, "missing query parameter 'layer'"),
        ("/api/models/mnist-cnn/activations?layer=Conv2D_1", 400, "missing query parameter 'image'"),
        ("/api/models/mnist-cnn/activations?layer=Conv2D_1&image=abc", 400, "must be an integer"),
        ("/api/models/mnist-cnn/activations?layer=Conv2D_1&image=1.5", 400, "must be an integer"),
        ("/api/models/mnist-cnn/activations?layer=Conv2D_1&image=1000", 404, "out of range"),
        ("/api/models/mnist-cnn/predict?image=-1", 404, "out of range"),
        ("/api/unknown", 404, "no API route"),
    ],
)
def test_bad_input_is_a_clear_4xx_json(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status, response.data
    assert message in response.get_json()["error"]


def test_default_keras_names_work_through_the_api(client):
    layers = [layer["name"] for layer in client.get("/api/models/legacy-h5").get_json()["layers"]]
    dense = [name for name in layers if name.startswith("dense")]
    assert dense
    body = client.get(f"/api/models/legacy-h5/activations?layer={dense[0]}&image=0").get_json()
    assert body["shape"] == [4]


def _npy(header: bytes) -> bytes:
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _declaring(shape: tuple[int, ...]) -> bytes:
    """.npy bytes declaring ``shape`` float32 and holding no data."""
    return _npy(repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode() + b"\n")


def _npy_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _replace_test_set(folder, members: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(folder / "test_set.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)


def test_hostile_test_sets_are_listed_as_broken_with_the_reason_and_the_others_keep_working(client, app_store):
    # the 1.96 MB file: a raw member "images" declaring 640,000 x 28 x 28 x 1 float32 (2 GB), which numpy
    # loads, and a decoy "images.npy" after it
    shutil.copytree(app_store / "tiny", app_store / "decoy")
    _replace_test_set(app_store / "decoy", [("images", _declaring((640_000, 28, 28, 1)) + b"\0" * 1_900_000),
                                            ("images.npy", _npy_of(np.zeros((24, 6, 6, 1), np.float32))),
                                            ("labels.npy", _npy_of(np.arange(24) % 3))])
    # a header numpy's parser fails on with a TokenError (an unterminated string, tokenized again)
    shutil.copytree(app_store / "tiny", app_store / "bad-header")
    _replace_test_set(app_store / "bad-header", [("images.npy", _npy(b"{'descr': '''<f4\n")),
                                                 ("labels.npy", _npy_of(np.arange(24) % 3))])
    started = time.monotonic()
    answer = client.get("/api/models")
    assert answer.status_code == 200, answer.get_data()[:300]
    assert time.monotonic() - started < 10  # the answer took 10.4 s and left the worker at 2.7 GB
    models = {row["name"]: row for row in answer.get_json()["models"]}
    assert models["tiny"]["status"] == "ok" and models["mnist-cnn"]["status"] == "ok"
    assert models["decoy"]["status"] == "broken"
    assert "members 'images' and 'images.npy' would both load as 'images'" in models["decoy"]["reason"]
    assert models["bad-header"]["status"] == "broken"
    assert "member 'images.npy': malformed .npy header" in models["bad-header"]["reason"]
    for name in ("decoy", "bad-header"):
        refused = client.get(f"/api/models/{name}/confusion")
        assert refused.status_code == 409 and "test set refused" in refused.get_json()["error"]
