"""Your own digit over the JSON API: draw, upload or send an array, then every image route takes ``u:<id>``; bad
input is a 4xx with its reason and stores nothing."""

from __future__ import annotations

import base64
import io
import threading

import keras
import numpy as np
import pytest
from PIL import Image

from app.core.user_images import image_id
from tests.app_context import refresh_context, served_context
from tests.digit_strokes import huge_png, place


@pytest.fixture
def client(app_state):
    from app.main import server

    return server.test_client()


def stored() -> int:
    return len(served_context().user_images)


def png(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def drawing(digit: int = 3) -> dict:
    return {"strokes": place(digit, 60, 40, 200), "width": 18, "size": 280}


def test_a_drawing_becomes_an_image_every_route_takes(client, app_store):
    answer = client.post("/api/models/mnist-cnn/inputs", json=drawing(3))
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    reference = body["id"]
    assert reference.startswith("u:") and answer.headers["Location"] == f"/api/inputs/{reference}"
    assert body["prediction"]["predicted"] == 3 and body["recipe"]["kind"] == "mnist" and body["shape"] == [28, 28, 1]
    assert body["preview"].startswith("data:image/png;base64,")
    preview = client.get(body["preview_url"])
    assert preview.status_code == 200 and preview.mimetype == "image/png"
    assert Image.open(io.BytesIO(preview.data)).size == (28, 28)
    assert Image.open(io.BytesIO(client.get(body["original_url"]).data)).size == (280, 280)
    assert client.get(f"/api/inputs/{reference}").get_json()["source"] == "strokes"

    predicted = client.get(f"/api/models/mnist-cnn/predict?image={reference}").get_json()
    assert predicted["image"] == reference and predicted["label"] is None and predicted["predicted"] == 3
    activations = client.get(f"/api/models/mnist-cnn/activations?layer=Conv2D_3&image={reference}").get_json()
    model = keras.saving.load_model(app_store / "mnist-cnn" / "model.keras")
    model_input = served_context().user_images.get(reference).model_input
    want = np.asarray(keras.Model(model.inputs, model.get_layer("Conv2D_3").output)(model_input[np.newaxis]))[0]
    np.testing.assert_allclose(np.array(activations["values"]), want, rtol=1e-5, atol=1e-5)
    contributions = client.get(f"/api/models/mnist-cnn/contributions?layer=Dense_1&image={reference}&classes=3,5")
    assert contributions.status_code == 200 and contributions.get_json()["image"] == reference
    # the same drawing again is the same image; centring off is another one
    assert client.post("/api/models/mnist-cnn/inputs", json=drawing(3)).get_json()["id"] == reference
    plain = client.post("/api/models/mnist-cnn/inputs", json={**drawing(3), "centre": False}).get_json()
    assert plain["id"] != reference and plain["recipe"]["centre"] is False and stored() == 2


def test_an_uploaded_png_of_a_test_image_round_trips_and_a_raw_array_is_taken_as_it_is(client, app_store):
    images = np.load(app_store / "mnist-cnn" / "test_set.npz")["images"]
    for index in (5, 77):
        want = client.get(f"/api/models/mnist-cnn/predict?image={index}").get_json()["predicted"]
        upload = client.post("/api/models/mnist-cnn/inputs", content_type="multipart/form-data",
                             data={"image": (io.BytesIO(png(np.round(images[index, :, :, 0] * 255).astype(np.uint8))),
                                             "digit.png")})
        assert upload.status_code == 201 and upload.get_json()["prediction"]["predicted"] == want
        raw = client.post("/api/models/mnist-cnn/inputs", json={"array": images[index, :, :, 0].tolist()})
        assert raw.status_code == 201 and raw.get_json()["source"] == "array"
        same = client.get(f"/api/models/mnist-cnn/predict?image={index}").get_json()["probabilities"]
        np.testing.assert_allclose(raw.get_json()["prediction"]["probabilities"], same, atol=1e-6)


def truncated_png() -> bytes:
    whole = png(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    return whole[: len(whole) // 2]


BAD_FILES = {
    "not an image": (b"%PDF-1.4 this is not a picture", 400, "not an image"),
    "empty canvas (a blank white picture)": (png(np.full((100, 100), 255, np.uint8)), 400, "blank"),
    "a 50,000 x 50,000 PNG": (None, 413, "too many pixels"),
    "a truncated PNG": (truncated_png(), 400, "truncated"),
}
BAD_JSON = {
    "empty canvas": ({"strokes": [], "width": 18, "size": 280}, 400, "empty"),
    "strokes without a width": ({"strokes": [[[10, 10]]], "size": 280}, 400, "pen width"),
    "wrong array shape": ({"array": [[0.0] * 27] * 28}, 400, "shape"),
    "array out of range": ({"array": [[9.0] * 28] * 28}, 400, "range"),
    "neither": ({"pixels": 1}, 400, "strokes"),
    "centre not a boolean": ({**drawing(), "centre": "maybe"}, 400, "centre"),
    # 20,000 points corner to corner with the thinnest pen: ~850 million values to draw
    "a scribble too long for its pen": ({"strokes": [[[0, 0], [2000, 2000]] * 10_000], "width": 0.5, "size": 2000},
                                        400, "too long for its pen"),
    # JSON integers beyond a float's range: numpy's conversion raises OverflowError, not ValueError
    "a 400-digit coordinate": ({"strokes": [[[10, 10], [10**400, 5]]], "width": 18, "size": 280}, 400,
                               "outside the 280 x 280 canvas"),
    "a 400-digit negative coordinate": ({"strokes": [[[-(10**400), 10]]], "width": 18, "size": 280}, 400,
                                        "outside the 280 x 280 canvas"),
    "a 400-digit array value": ({"array": [[0.0] * 27 + [10**400]] * 28}, 400, "not finite"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_upload_gets_its_4xx_and_nothing_is_stored(client, case):
    data, status, reason = BAD_FILES[case]
    data = huge_png() if data is None else data
    answer = client.post("/api/models/mnist-cnn/inputs", content_type="multipart/form-data",
                         data={"image": (io.BytesIO(data), "upload.png")})
    assert answer.status_code == status and reason in answer.get_json()["error"], answer.get_json()
    assert stored() == 0


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_a_bad_drawing_or_array_gets_its_4xx_and_nothing_is_stored(client, case):
    body, status, reason = BAD_JSON[case]
    answer = client.post("/api/models/mnist-cnn/inputs", json=body)
    assert answer.status_code == status and reason in answer.get_json()["error"], answer.get_json()
    assert stored() == 0


def test_other_bad_requests(client, monkeypatch):
    assert client.post("/api/models/no-such/inputs", json=drawing()).status_code == 404
    assert client.post("/api/models/mnist-cnn/inputs", data="x", content_type="text/plain").status_code == 415
    assert client.post("/api/models/mnist-cnn/inputs", content_type="multipart/form-data", data={}).status_code == 400
    assert client.post("/api/models/mnist-cnn/inputs", data=b"[1,", content_type="application/json").status_code == 400
    monkeypatch.setenv("MAX_IMAGE_BYTES", "20000")
    refresh_context()
    big = client.post("/api/models/mnist-cnn/inputs", content_type="multipart/form-data",
                      data={"image": (io.BytesIO(b"\0" * 30_000), "big.png")})
    assert big.status_code == 413 and "MAX_IMAGE_BYTES" in big.get_json()["error"]
    for reference in ("u:" + "0" * 20, "u:nothex"):
        answer = client.get(f"/api/models/mnist-cnn/predict?image={reference}")
        assert answer.status_code in (400, 404) and answer.get_json()["error"]
    assert client.get("/api/inputs/u:" + "0" * 20 + "/preview.png").status_code == 404
    assert client.get("/api/inputs/u:" + "0" * 20 + "/secret.png").status_code in (400, 404)
    assert stored() == 0


def test_an_image_drawn_for_one_model_is_preprocessed_again_for_another(client):
    reference = client.post("/api/models/mnist-cnn/inputs", json=drawing(7)).get_json()["id"]
    answer = client.get(f"/api/models/tiny/predict?image={reference}")  # a 6 x 6 model: resized from the original
    assert answer.status_code == 200 and len(answer.get_json()["probabilities"]) == 3


def pad_callbacks(client) -> list[dict]:
    """Every server callback fed by a drawing pad's strokes (``<page>-pad-strokes.data``), as dash-renderer knows
    them from ``/_dash-dependencies``."""
    return [item for item in client.get("/_dash-dependencies").get_json()
            if any(entry["id"].endswith("-pad-strokes") and entry["property"] == "data" for entry in item["inputs"])]


@pytest.mark.parametrize("coordinate", [10**400, -(10**400), 10**39], ids=["1e400", "-1e400", "1e39"])
def test_the_pads_callbacks_answer_a_huge_coordinate_with_their_message(client, coordinate):
    callbacks = pad_callbacks(client)
    assert {item["inputs"][0]["id"] for item in callbacks} >= {"explore-pad-strokes", "compare-pad-strokes"}
    strokes = {"strokes": [[[10, 10], [coordinate, 20]]], "width": 18, "size": 280}
    values = {"pad-strokes": strokes, "pad-centre": True, "model": "mnist-cnn"}  # keyed without the page prefix

    def entry(dependency: dict) -> dict:
        return {**dependency, "value": values.get(dependency["id"].split("-", 1)[1])}

    for item in callbacks:
        outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]}
                   for part in item["output"][2:-2].split("...")]
        body = {"output": item["output"], "outputs": outputs, "inputs": [entry(d) for d in item["inputs"]],
                "state": [entry(d) for d in item["state"]], "changedPropIds": [f"{item['inputs'][0]['id']}.data"]}
        answer = client.post("/_dash-update-component", json=body)
        assert answer.status_code == 200, (item["output"], answer.get_data()[:300])
        assert "outside the 280 x 280 canvas" in answer.get_data(as_text=True), item["output"]
    assert stored() == 0


def test_posts_at_the_stores_bound_from_four_threads_are_all_answered_with_their_image(client, monkeypatch):
    """Real threads at a bound of 2: nearly every post evicts while others store, evict or read their preview."""
    from app.main import server

    monkeypatch.setenv("USER_IMAGES_KEPT", "2")
    refresh_context()
    answers, start = [], threading.Barrier(4)

    def post(number: int) -> None:
        poster = server.test_client()
        start.wait()
        for index in range(15):
            values = np.random.default_rng(number * 100 + index).random((6, 6), dtype=np.float32)
            answer = poster.post("/api/models/tiny/inputs", json={"array": values.tolist()})
            answers.append((answer.status_code, answer.get_json(), values))

    threads = [threading.Thread(target=post, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 60
    for status, body, values in answers:
        assert status == 201, body
        assert body["id"] == image_id(values[:, :, None])
        # the preview shows the array sent: one channel, high values dark (1 - value) on the test set's range
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",", 1)[1]))), np.float64)
        low, high = body["recipe"]["low"], body["recipe"]["high"]
        np.testing.assert_allclose(shown / 255, 1 - np.clip((values - low) / (high - low), 0, 1), atol=1 / 255 + 1e-6)
    assert stored() <= 2 + 4
