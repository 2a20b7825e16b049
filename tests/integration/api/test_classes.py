"""The comparison API routes over the Flask test client: right numbers, and a clear 4xx for every bad input."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.classes import compute_class_means
from app.core.finder import model_confusion
from app.core.grid import tile
from tests.app_context import served_context
from tests.conftest import layer_outputs


@pytest.fixture
def client(app_store):
    """A test client of the app serving ``app_store`` (tiny models plus a copy of mnist-cnn)."""
    from app.main import server

    return server.test_client()


def get_ok(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_confusion_route_matches_predictions(client):
    body = get_ok(client, "/api/models/mnist-cnn/confusion")
    loaded = served_context().store.get("mnist-cnn")
    predicted = loaded.engine.predictions().argmax(axis=1)
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (loaded.labels, predicted), 1)
    assert body["matrix"] == expected.tolist()
    assert body["total"] == 1000
    assert body["correct"] == int(np.trace(expected))
    assert body["class_names"] == [str(i) for i in range(10)]


def test_class_mean_route_equals_direct_mean(client):
    body = get_ok(client, "/api/models/tiny/class-mean?layer=hidden&label=1")
    loaded = served_context().store.get("tiny")
    outputs = layer_outputs(loaded, "hidden", np.flatnonzero(loaded.labels == 1))
    assert body["count"] == 8
    assert body["shape"] == [4]
    np.testing.assert_allclose(body["values"], outputs.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_class_grid_route_gives_the_tiled_mean_and_difference_as_float32(client):
    loaded = served_context().store.get("mnist-cnn")
    outputs = layer_outputs(loaded, "Conv2D_3")
    mean_4, mean_9 = outputs[loaded.labels == 4].mean(axis=0), outputs[loaded.labels == 9].mean(axis=0)
    for query, expected in ((f"label=4&version={loaded.version}", mean_4), ("a=4&b=9", mean_4 - mean_9)):
        answer = client.get(f"/api/models/mnist-cnn/class-grid?layer=Conv2D_3&{query}")
        assert answer.status_code == 200, answer.get_data()[:200]
        height, width = map(int, answer.headers["X-Grid-Shape"].split(","))
        grid = np.frombuffer(answer.get_data(), "<f4").reshape(height, width)
        np.testing.assert_allclose(grid, tile(expected)[0], rtol=1e-4, atol=1e-5)
    assert client.get("/api/models/mnist-cnn/class-grid?layer=Conv2D_3&label=4&version=old").status_code == 409
    assert client.get("/api/models/mnist-cnn/class-grid?layer=Conv2D_3&label=10").status_code == 400
    assert client.get("/api/models/mnist-cnn/class-grid?layer=Conv2D_3&a=4").status_code == 400


def test_class_mean_of_mnist_conv_layer(client):
    body = get_ok(client, "/api/models/mnist-cnn/class-mean?layer=Conv2D_3&label=4")
    assert body["shape"] == [3, 3, 128]
    assert np.asarray(body["values"]).shape == (3, 3, 128)
    assert body["count"] == 100


def test_class_difference_route_ranks_units(client):
    body = get_ok(client, "/api/models/mnist-cnn/class-difference?layer=Conv2D_3&a=4&b=9&top=5")
    scores = [row["mean_abs_difference"] for row in body["ranked_units"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    difference = np.asarray(body["difference"])
    top_unit = body["ranked_units"][0]["unit"]
    assert np.abs(difference[..., top_unit]).mean() == pytest.approx(scores[0], rel=1e-5)
    assert np.abs(difference).mean(axis=(0, 1)).max() == pytest.approx(scores[0], rel=1e-5)


def test_top_images_route_returns_the_k_largest(client):
    body = get_ok(client, "/api/models/mnist-cnn/top-images?layer=Dense_1&unit=3&k=5")
    loaded = served_context().store.get("mnist-cnn")
    direct = layer_outputs(loaded, "Dense_1")[:, 3]
    values = [row["value"] for row in body["images"]]
    np.testing.assert_allclose(values, np.sort(direct)[::-1][:5], rtol=1e-5)
    np.testing.assert_allclose(direct[[row["image"] for row in body["images"]]], values, rtol=1e-5)
    assert body["by"] == "mean" and body["dead"] is bool(np.all(direct == 0))
    body = get_ok(client, "/api/models/mnist-cnn/top-images?layer=Conv2D_3&unit=0&by=max")
    assert len(body["images"]) == 9 and body["by"] == "max"


def test_contributions_route_adds_up_to_logits(client):
    body = get_ok(client, "/api/models/mnist-cnn/contributions?layer=Dense_1&image=12&classes=4,9")
    loaded = served_context().store.get("mnist-cnn")
    kernel, bias = loaded.model.get_layer("Dense_2").get_weights()
    hidden = loaded.engine.activations("Dense_1", 12)
    logits = hidden @ kernel + bias
    assert body["target"] == "Dense_2" and body["classes"] == [4, 9]
    np.testing.assert_allclose(np.sum(body["contributions"], axis=1) + body["bias"], logits[[4, 9]], rtol=1e-4)
    np.testing.assert_allclose(body["logits"], logits[[4, 9]], rtol=1e-4)
    np.testing.assert_allclose(body["difference"], hidden * (kernel[:, 4] - kernel[:, 9]), rtol=1e-4, atol=1e-6)


def test_images_route_lists_exactly_a_confusion_cell(client):
    loaded = served_context().store.get("mnist-cnn")
    probabilities = loaded.engine.predictions()
    predicted = probabilities.argmax(axis=1)
    body = get_ok(client, "/api/models/mnist-cnn/images?true=6&predicted=0")
    expected = np.flatnonzero((loaded.labels == 6) & (predicted == 0))
    assert body["count"] == len(expected) == model_confusion(loaded)[6, 0]
    assert sorted(row["image"] for row in body["images"]) == expected.tolist()
    confidences = [row["confidence"] for row in body["images"]]
    assert confidences == sorted(confidences)  # least sure first by default


def test_images_route_filters_wrong_and_confidence(client):
    body = get_ok(client, "/api/models/mnist-cnn/images?correct=wrong&min_conf=0.9&sort=confidence-desc")
    assert body["count"] > 0
    assert all(row["label"] != row["predicted"] and row["confidence"] >= 0.9 for row in body["images"])
    confidences = [row["confidence"] for row in body["images"]]
    assert confidences == sorted(confidences, reverse=True)


def test_images_route_sorts_the_4s_by_the_probability_of_9(client):
    body = get_ok(client, "/api/models/mnist-cnn/images?true=4&class=9&sort=probability-desc&min_prob=0.001")
    probabilities = served_context().store.get("mnist-cnn").engine.predictions()
    labels = served_context().store.get("mnist-cnn").labels
    expected = [i for i in np.flatnonzero(labels == 4) if probabilities[i, 9] >= 0.001]
    assert sorted(row["image"] for row in body["images"]) == sorted(expected) and body["count"] > 0
    values = [row["probability"] for row in body["images"]]
    assert values == sorted(values, reverse=True)
    np.testing.assert_allclose(values, probabilities[[row["image"] for row in body["images"]], 9], rtol=1e-6)
    assert client.get("/api/models/mnist-cnn/images?sort=probability-desc").status_code == 400


def test_images_route_sorts_the_4s_by_their_dense_outputs_distance_to_the_mean_9(client):
    """The layer's own likeness, against an independent numpy computation over the whole test set."""
    body = get_ok(client, "/api/models/mnist-cnn/images?true=4&class=9&sort=likeness&layer=Dense_1")
    loaded = served_context().store.get("mnist-cnn")
    outputs = layer_outputs(loaded, "Dense_1").reshape(len(loaded.labels), -1).astype(np.float64)
    mean_nine = outputs[loaded.labels == 9].mean(axis=0)
    fours = np.flatnonzero(loaded.labels == 4)
    expected = np.linalg.norm(outputs[fours] - mean_nine, axis=1)
    assert body["count"] == len(fours)
    assert [row["image"] for row in body["images"]][:10] == fours[np.argsort(expected, kind="stable")][:10].tolist()
    distances = [row["distance"] for row in body["images"]]
    assert distances == sorted(distances)
    np.testing.assert_allclose(distances, np.sort(expected), rtol=1e-4)


BAD_REQUESTS = [
    # (url, status, words in the message)
    ("/api/models/nope/confusion", 404, "no model"),
    ("/api/models/corrupt/confusion", 409, "cannot load"),
    ("/api/models/bad..name/confusion", 400, "invalid model name"),
    ("/api/models/tiny/class-mean?label=1", 400, "missing query parameter 'layer'"),
    ("/api/models/tiny/class-mean?layer=nope&label=1", 404, "no layer 'nope'"),
    ("/api/models/tiny/class-mean?layer=conv", 400, "missing query parameter 'label'"),
    ("/api/models/tiny/class-mean?layer=conv&label=x", 400, "must be an integer"),
    ("/api/models/tiny/class-mean?layer=conv&label=3", 400, "class 3 is out of range"),
    ("/api/models/tiny/class-mean?layer=conv&label=-1", 400, "out of range"),
    ("/api/models/tiny/class-difference?layer=conv&a=0&b=7", 400, "class 7"),
    ("/api/models/tiny/class-difference?layer=conv&a=0&b=1&top=99", 400, "'top'"),
    ("/api/models/tiny/top-images?layer=conv&k=3", 400, "missing query parameter 'unit'"),
    ("/api/models/tiny/top-images?layer=conv&unit=2", 400, "'unit' must be an integer between 0 and 1"),
    ("/api/models/tiny/top-images?layer=conv&unit=1.5", 400, "must be an integer"),
    ("/api/models/tiny/top-images?layer=conv&unit=0&k=0", 400, "'k' must be an integer between 1 and 24"),
    ("/api/models/tiny/top-images?layer=conv&unit=0&k=25", 400, "'k'"),
    ("/api/models/mnist-cnn/top-images?layer=Conv2D_3&unit=0&k=65", 400, "'k' must be an integer between 1 and 64"),
    ("/api/models/tiny/top-images?layer=conv&unit=0&by=median", 400, "'by' must be one of mean, max"),
    ("/api/models/tiny/top-images?layer=nope&unit=0", 404, "no layer"),
    ("/api/models/tiny/contributions?layer=conv&image=0&classes=0,1", 400, "vector layer"),
    ("/api/models/tiny/contributions?layer=output&image=0&classes=0,1", 400, "not followed by a Dense layer"),
    ("/api/models/tiny/contributions?layer=hidden&image=99&classes=0,1", 404, "out of range"),
    ("/api/models/tiny/contributions?layer=hidden&image=a&classes=0,1", 400, "must be an integer"),
    ("/api/models/tiny/contributions?layer=hidden&image=0", 400, "missing query parameter 'classes'"),
    ("/api/models/tiny/contributions?layer=hidden&image=0&classes=0", 400, "two comma-separated"),
    ("/api/models/tiny/contributions?layer=hidden&image=0&classes=0,x", 400, "integers"),
    ("/api/models/tiny/contributions?layer=hidden&image=0&classes=0,5", 400, "class 5 is out of range"),
    ("/api/models/tiny/contributions?layer=nope&image=0&classes=0,1", 404, "no layer"),
    ("/api/models/tiny/images?true=3", 400, "class 3 is out of range"),
    ("/api/models/tiny/images?predicted=x", 400, "must be an integer"),
    ("/api/models/tiny/images?correct=maybe", 400, "correctness must be one of"),
    ("/api/models/tiny/images?sort=random", 400, "sort must be one of"),
    ("/api/models/tiny/images?min_conf=abc", 400, "must be a number"),
    ("/api/models/tiny/images?min_conf=0.9&max_conf=0.1", 400, "confidence range"),
    ("/api/models/nope/images", 404, "no model"),
    ("/api/models/tiny/images?sort=likeness&class=1", 400, "the layer whose likeness"),
    ("/api/models/tiny/images?sort=likeness&layer=hidden", 400, "the class to look like"),
    ("/api/models/tiny/images?sort=likeness&class=1&layer=nope", 404, "no layer"),
]


@pytest.mark.parametrize(("url", "status", "words"), BAD_REQUESTS)
def test_bad_requests_get_a_clear_4xx(client, url, status, words):
    response = client.get(url)
    assert response.status_code == status, response.get_json()
    assert words in response.get_json()["error"]


def test_class_mean_of_a_class_without_images_is_404(client, app_store):
    from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder

    images, labels = tiny_test_set(9)
    write_model_folder(app_store, "no-class-2", build_tiny_model(), images, np.where(labels == 2, 0, labels))
    response = client.get("/api/models/no-class-2/class-mean?layer=conv&label=2")
    assert response.status_code == 404
    assert "no images" in response.get_json()["error"]


def test_statistics_follow_a_new_model_version(client, app_store):
    """Caches are keyed by version: replacing a model's files gives fresh class means."""
    from tests.conftest import tiny_test_set

    before = get_ok(client, "/api/models/tiny/class-mean?layer=hidden&label=0")["values"]
    images, labels = tiny_test_set(24, seed=11)
    np.savez(app_store / "tiny" / "test_set.npz", images=images, labels=labels)
    after = get_ok(client, "/api/models/tiny/class-mean?layer=hidden&label=0")["values"]
    assert before != after
    loaded = served_context().store.get("tiny")
    expected = compute_class_means(loaded.engine, loaded.labels, "hidden", 3).means[0]
    np.testing.assert_allclose(after, expected, rtol=1e-6)
