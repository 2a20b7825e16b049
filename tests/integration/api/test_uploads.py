"""Bringing your own model through ``POST /api/models``: good uploads become models whose values equal Keras' own;
every refusal leaves the store exactly as it was (same files, same sizes, same times, no temporary folder)."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from app.config import PROJECT_ROOT
from tests.conftest import build_tiny_model, tiny_test_set

SUBSET = PROJECT_ROOT / "app" / "data" / "mnist_subset.npz"


@pytest.fixture
def client(app_store):
    from app.main import server

    return server.test_client()


def store_state(root: Path) -> list[tuple[str, int, int]]:
    """Every path under the store (hidden ones too) with its size and modification time."""
    state = []
    for parent, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(parent) / name
            info = path.lstat()
            state.append((str(path.relative_to(root)), info.st_size, info.st_mtime_ns))
    return sorted(state)


def keras_bytes(model, suffix: str = ".keras", tmp: Path | None = None) -> bytes:
    path = (tmp or Path("/tmp")) / f"upload-{os.getpid()}-{id(model)}{suffix}"
    model.save(path)
    data = path.read_bytes()
    path.unlink()
    return data


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(client, name: str, model: bytes, model_name: str = "model.keras", test_set: bytes | None = None,
           test_set_name: str = "test_set.npz", **fields):
    data = {"name": name, "model": (io.BytesIO(model), model_name), **fields}
    if test_set is not None:
        data["test_set"] = (io.BytesIO(test_set), test_set_name)
    return client.post("/api/models", data=data, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """The tiny CNN as .keras and .h5 bytes with its test set as .npz bytes."""
    tmp = tmp_path_factory.mktemp("upload-files")
    keras.backend.clear_session()
    model = build_tiny_model()
    images, labels = tiny_test_set()
    return {"keras": keras_bytes(model, ".keras", tmp), "h5": keras_bytes(model, ".h5", tmp),
            "npz": npz_bytes(images=images, labels=labels), "images": images}


def test_an_uploaded_model_opens_with_values_equal_to_keras_and_a_report_of_every_layer(client, app_store,
                                                                                        tiny_files):
    response = upload(client, "mine", tiny_files["keras"], "my cnn.keras", tiny_files["npz"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == "/api/models/mine"
    assert body["test_set_size"] == 24 and body["classes"] == 3
    shown = {row["name"]: row["shown_as"] for row in body["layers"]}
    assert shown == {"conv": "maps", "pool": "maps", "flat": "nodes", "hidden": "nodes", "output": "nodes"}
    assert client.get("/api/models/mine/report").get_json()["layers"] == body["layers"]

    values = np.array(client.get("/api/models/mine/activations?layer=conv&image=5").get_json()["values"])
    model = keras.saving.load_model(app_store / "mine" / "model.keras")
    want = np.asarray(keras.Model(model.inputs, model.get_layer("conv").output)(tiny_files["images"][5:6]))[0]
    np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-6)
    meta = client.get("/api/models").get_json()
    assert {"name": "mine", "status": "ok"}.items() <= next(m for m in meta["models"] if m["name"] == "mine").items()


def test_a_legacy_h5_with_a_built_in_dataset_as_its_test_set(client, app_store, tmp_path):
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, name="c"),
                              keras.layers.GlobalAveragePooling2D(name="g"),
                              keras.layers.Dense(10, activation="softmax", name="d")])
    response = upload(client, "digits-h5", keras_bytes(model, ".h5", tmp_path), "cnn.h5", dataset="mnist-subset")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["test_set_size"] == 1000
    with np.load(app_store / "digits-h5" / "test_set.npz") as data, np.load(SUBSET) as subset:
        np.testing.assert_array_equal(data["labels"], subset["y_test"])
        np.testing.assert_allclose(data["images"][..., 0], subset["x_test"] / 255.0, atol=1e-6)


def test_a_zip_of_a_model_folder_with_its_own_test_set_extra_files_left_out(client, app_store, tiny_files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("exported/model.keras", tiny_files["keras"])
        bundle.writestr("exported/test_set.npz", tiny_files["npz"])
        bundle.writestr("exported/meta.json", '{"class_names": ["cat", "dog", "fox"]}')
        bundle.writestr("exported/notes.txt", "hello")
    response = upload(client, "zipped", buffer.getvalue(), "exported.zip")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["ignored"] == ["exported/notes.txt"]
    assert client.get("/api/models/zipped").get_json()["class_names"] == ["cat", "dog", "fox"]
    assert sorted(p.name for p in (app_store / "zipped").iterdir()) == ["meta.json", "model.keras", "test_set.npz"]


def lambda_model_bytes(tmp: Path) -> bytes:
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    return keras_bytes(model, ".keras", tmp)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(text: bytes) -> bytes:
    """.npy version 1.0 bytes with ``text`` as the header and no data."""
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


# 640,000 x 28 x 28 x 1 float32 (2 GB) declared, no data; and a header numpy's parser fails on with a TokenError.
DECLARING_2_GB = npy_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (640000, 28, 28, 1), }\n")
UNTERMINATED_HEADER = npy_header(b"{'descr': '''<f4\n")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


REFUSALS = {
    # case -> (form fields builder, status, words the reason must contain)
    "Lambda layer (safe mode)": (lambda f, tmp: dict(model=lambda_model_bytes(tmp), test_set=f["npz"]), 400,
                                 "Lambda"),
    "test set of the wrong shape": (
        lambda f, tmp: dict(model=f["keras"], test_set=npz_bytes(images=np.zeros((4, 8, 8, 1), np.float32),
                                                                labels=np.zeros(4, np.int64))), 400, "does not fit"),
    "labels beyond the classes": (
        lambda f, tmp: dict(model=f["keras"], test_set=npz_bytes(images=np.zeros((4, 6, 6, 1), np.float32),
                                                                labels=np.array([0, 1, 2, 7]))), 400, "labels"),
    "truncated model file": (lambda f, tmp: dict(model=f["keras"][: len(f["keras"]) // 2], test_set=f["npz"]), 400,
                             "cannot load"),
    "truncated h5": (lambda f, tmp: dict(model=f["h5"][:3000], model_name="m.h5", test_set=f["npz"]), 400,
                     "cannot load"),
    "truncated test set": (lambda f, tmp: dict(model=f["keras"], test_set=f["npz"][:200]), 400, "test set"),
    "test set not an npz": (lambda f, tmp: dict(model=f["keras"], test_set=b"1,2,3", test_set_name="t.csv"), 400,
                            ".npz"),
    "pickled object array": (
        lambda f, tmp: dict(model=f["keras"], test_set=npz_bytes(images=np.array([{"x": 1}], dtype=object),
                                                                labels=np.zeros(1, np.int64))), 400, "test set"),
    "decoy beside the member numpy loads": (
        lambda f, tmp: dict(model=f["keras"], test_set=zip_bytes({
            "images": DECLARING_2_GB, "images.npy": npy_bytes(f["images"]), "labels.npy": npy_bytes(np.arange(24) % 3),
        })), 400, "members 'images' and 'images.npy' would both load as 'images'"),
    "malformed .npy header (a TokenError in numpy)": (
        lambda f, tmp: dict(model=f["keras"], test_set=zip_bytes({
            "images.npy": UNTERMINATED_HEADER, "labels.npy": npy_bytes(np.arange(24) % 3),
        })), 400, "test set refused: cannot read the arrays in test_set.npz: member 'images.npy': malformed .npy"),
    "no test set": (lambda f, tmp: dict(model=f["keras"]), 400, "test set is needed"),
    "unknown dataset": (lambda f, tmp: dict(model=f["keras"], dataset="../../etc/passwd"), 400, "unknown dataset"),
    "not a model file": (lambda f, tmp: dict(model=b"MZ\x90\x00", model_name="tool.exe", test_set=f["npz"]), 400,
                         ".keras, .h5"),
    "zip escaping its folder": (lambda f, tmp: dict(model=zip_bytes({"../model.keras": f["keras"]}),
                                                    model_name="m.zip"), 400, "outside"),
    "zip bomb": (lambda f, tmp: dict(model=zip_bytes({"model.keras": b"\0" * 3_000_000}), model_name="m.zip"), 413,
                 "unpacks to"),
    "zip without a model": (lambda f, tmp: dict(model=zip_bytes({"test_set.npz": f["npz"]}), model_name="m.zip"),
                            400, "no model file"),
    "invalid name": (lambda f, tmp: dict(model=f["keras"], test_set=f["npz"], name="../escape"), 400,
                     "invalid model name"),
    "name taken": (lambda f, tmp: dict(model=f["keras"], test_set=f["npz"], name="tiny"), 409, "already exists"),
    "oversized request": (lambda f, tmp: dict(model=b"\0" * 2_100_000, test_set=f["npz"]), 413, "large"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_upload_says_why_and_leaves_the_store_untouched(client, app_store, tiny_files, tmp_path,
                                                                  monkeypatch, case):
    from tests.app_context import refresh_context

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "2000000")
    refresh_context()
    build, status, words = REFUSALS[case]
    fields = {"name": "refused", "model_name": "model.keras", **build(tiny_files, tmp_path)}
    before = store_state(app_store)
    response = upload(client, fields.pop("name"), fields.pop("model"), fields.pop("model_name"), **fields)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert words in response.get_json()["error"]
    assert "Traceback" not in response.get_json()["error"]
    assert store_state(app_store) == before


def test_a_request_that_is_not_a_form_is_refused(client):
    response = client.post("/api/models", json={"name": "x"})
    assert response.status_code == 415 and "multipart/form-data" in response.get_json()["error"]
    response = client.post("/api/models", data={"name": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400 and "'model'" in response.get_json()["error"]


def test_a_second_upload_of_the_same_name_keeps_the_first(client, app_store, tiny_files):
    assert upload(client, "twice", tiny_files["keras"], test_set=tiny_files["npz"]).status_code == 201
    first = store_state(app_store / "twice")
    second = upload(client, "twice", tiny_files["h5"], "m.h5", tiny_files["npz"])
    assert second.status_code == 409
    assert store_state(app_store / "twice") == first


def test_deleting_a_model_removes_it_from_every_listing(client, app_store, tiny_files):
    assert upload(client, "short-lived", tiny_files["keras"], test_set=tiny_files["npz"]).status_code == 201
    assert client.get("/api/models/short-lived/predict?image=0").status_code == 200
    assert client.delete("/api/models/short-lived").status_code == 204
    assert not (app_store / "short-lived").exists()
    assert not [p for p in app_store.iterdir() if p.name.startswith(".")]
    assert "short-lived" not in {m["name"] for m in client.get("/api/models").get_json()["models"]}
    assert client.get("/api/models/short-lived/predict?image=0").status_code == 404
    assert client.delete("/api/models/short-lived").status_code == 404
    assert client.delete("/api/models/..%2Fetc").status_code in (400, 404)


def test_the_report_says_why_a_layer_is_not_shown(client, app_store, tmp_path):
    keras.backend.clear_session()
    inputs = keras.Input((6, 6, 1))
    sequence = keras.layers.Reshape((6, 6), name="as_sequence")(inputs)
    pooled = keras.layers.GlobalAveragePooling1D(name="gap")(sequence)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(pooled)
    images, labels = tiny_test_set()
    response = upload(client, "sequence", keras_bytes(keras.Model(inputs, outputs), ".keras", tmp_path),
                      test_set=npz_bytes(images=images, labels=labels))
    assert response.status_code == 201, response.get_json()
    rows = {row["name"]: row for row in response.get_json()["layers"]}
    assert rows["as_sequence"]["shown_as"] is None and "rank 2" in rows["as_sequence"]["reason"]
    assert rows["as_sequence"]["output_shape"] == [6, 6]
    assert rows["gap"]["shown_as"] == "nodes" and rows["out"]["shown_as"] == "nodes"


def test_upload_and_delete_in_a_loop_with_readers_is_never_a_server_error(client, app_store, tiny_files):
    """Real threads: one client uploads and deletes the same model in a loop while two read the list and the
    model; every answer is the model (200), its absence (404), or the upload's and delete's own answers."""
    from app.main import server

    cycles, errors, answers = 8, [], []
    done = threading.Event()

    def read(path: str) -> None:
        reader = server.test_client()
        while not done.is_set():
            answers.append((path, reader.get(path).status_code))

    readers = [threading.Thread(target=read, args=(path,)) for path in ("/api/models", "/api/models/churn")]
    for thread in readers:
        thread.start()
    try:
        for _ in range(cycles):
            added = upload(client, "churn", tiny_files["keras"], test_set=tiny_files["npz"])
            if added.status_code != 201:
                errors.append(("upload", added.status_code, added.get_data(as_text=True)[:200]))
            deleted = client.delete("/api/models/churn")
            if deleted.status_code != 204:
                errors.append(("delete", deleted.status_code, deleted.get_data(as_text=True)[:200]))
    finally:
        done.set()
        for thread in readers:
            thread.join(timeout=30)
    assert not errors
    assert {path for path, _ in answers} == {"/api/models", "/api/models/churn"}
    assert {status for path, status in answers if path == "/api/models"} == {200}
    assert {status for path, status in answers if path != "/api/models"} <= {200, 404}
