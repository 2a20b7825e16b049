"""A layer with hundreds of maps, as the browser and the API get it: a 224-pixel MobileNetV2's out_relu (1,280 maps
of 7 x 7) is a view of one page within the byte budget, naming its true map numbers; the grid route's values of a
page are the layer's maps as an independent Keras sub-model computes them; hostile pages and orders are a 400."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode

import numpy as np
import pytest

from app.figures.grids import heatmap_values
from tests.conftest import MANY_MAPS_LAYER, layer_outputs, write_many_maps_model, write_model_folder
from tests.integration.hostile.support import NUMBER_LOOKALIKES, ODD_STRINGS, captured_errors, describe

VIEW_BYTES = 150_000  # the most a view of any layer may take, uncompressed


@pytest.fixture
def client(app_store):
    import keras

    from app.main import server

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10)
    rows, cols = np.mgrid[0:224, 0:224] / 223.0
    images = np.stack([np.stack([rows, cols, (rows * cols) ** (k + 1)], axis=-1) for k in range(3)])
    write_model_folder(app_store, "mobilenetv2", model, images.astype(np.float32), np.arange(3))
    write_many_maps_model(app_store)
    return server.test_client()


def render(client, model: str, layer: str, image: int, order: str = "model", page=None) -> tuple[int, dict]:
    """The explorer's render answer as dash-renderer gets it (size in bytes, decoded), for ``page`` in ``order``."""
    from tests.unit.test_runtime_requirements import smoke_run

    dependencies = client.get("/_dash-dependencies").get_json()
    body = smoke_run.callback_request(dependencies, "explore-heatmap.figure", {
        **smoke_run.EXPLORER_RENDER_INPUTS, "explore-model.value": model, "explore-layer.value": layer,
        "explore-image.value": image, "explore-order.value": order, "explore-page.data": page})
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200
    raw = answer.get_data()
    return len(raw), json.loads(raw)["response"]


def grid(client, url: str):
    answer = client.get(url)
    assert answer.status_code == 200, answer.get_data()[:300]
    height, width = (int(n) for n in answer.headers["X-Grid-Shape"].split(","))
    return np.frombuffer(answer.get_data(), "<f4").reshape(height, width), answer.headers


def test_a_mobilenets_1280_maps_are_a_page_of_64_within_the_byte_budget_whose_values_are_keras(client):
    from app.pages import explore
    from tests.app_context import served_context

    size, response = render(client, "mobilenetv2", "out_relu", 2, "active", 3)
    assert size <= VIEW_BYTES, size
    trace = response[explore.HEATMAP]["figure"]["data"][0]
    meta = trace["meta"]
    assert meta["page"] == {"page": 3, "pages": 20, "per_row": 8, "first": 129, "last": 192, "of": 1280,
                            "order": "active"}
    expected = layer_outputs(served_context().store.get("mobilenetv2"), "out_relu", [2])[0]  # [7, 7, 1280]
    by_mean = np.argsort(-expected.astype(np.float64).mean(axis=(0, 1)), kind="stable")
    # the page's true map numbers are the 129th to 192nd most active maps (by their means: the engine's float32
    # may order two near-equal means the other way round)
    means = expected.astype(np.float64).mean(axis=(0, 1))
    np.testing.assert_allclose(means[meta["units"]], means[by_mean[128:192]], rtol=1e-4, atol=1e-6)
    assert parse_qs(response[explore.VIEW]["data"][1:]) == {
        "model": ["mobilenetv2"], "layer": ["out_relu"], "image": ["2"], "cmap": ["viridis"], "page": ["3"],
        "order": ["active"]}
    # every paged layer of the model, on its first page and its last, in either order
    for layer in ("block_2_depthwise", "block_5_depthwise", "block_16_project", "block_16_expand_relu"):
        for order, page in (("model", 1), ("active", 99)):
            size, answer = render(client, "mobilenetv2", layer, 1, order, page)
            shown = answer[explore.HEATMAP]["figure"]["data"][0]["meta"]["page"]
            assert size <= VIEW_BYTES, (layer, size)
            assert shown["page"] == (shown["pages"] if page == 99 else 1) and shown["order"] == order
    values, headers = grid(client, meta["values"])
    assert values.shape == (56, 56) and headers["X-Grid-Page"] == "3/20"
    assert [int(unit) for unit in headers["X-Grid-Units"].split(",")] == meta["units"]
    for place, unit in enumerate(meta["units"]):
        row, col = divmod(place, 8)
        np.testing.assert_allclose(values[row * 7:(row + 1) * 7, col * 7:(col + 1) * 7], expected[..., unit],
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(heatmap_values(trace), values, atol=(values.max() - values.min()) / 255 + 1e-6)


def test_the_grid_route_pages_a_many_map_layer_and_refuses_hostile_pages_and_orders(client):
    from tests.app_context import served_context

    loaded = served_context().store.get("many-maps")
    expected = layer_outputs(loaded, MANY_MAPS_LAYER, [1])[0]  # [16, 16, 300]
    base = f"/api/models/many-maps/grid?layer={MANY_MAPS_LAYER}&image=1"
    values, headers = grid(client, base + "&page=5")
    assert headers["X-Grid-Page"] == "5/5" and headers["X-Grid-Units"] == ",".join(map(str, range(256, 300)))
    assert values.shape == (6 * 16, 8 * 16) and np.isnan(values[5 * 16:, 4 * 16:]).all()  # 44 maps, 8 to a row
    np.testing.assert_allclose(values[16:32, 16:32], expected[..., 256 + 9], rtol=1e-5, atol=1e-6)
    first, headers = grid(client, base)  # no page: the first
    assert headers["X-Grid-Page"] == "1/5"
    np.testing.assert_allclose(first[:16, 16:32], expected[..., 1], rtol=1e-5, atol=1e-6)
    for query, message in (("&page=6", "past the last page"), ("&page=0", "page"), ("&page=x", "page"),
                           ("&page=99999999999999999999", "page"), ("&order=random", "order"),
                           ("&order=", None)):
        answer = client.get(base + query)
        if message is None:
            assert answer.status_code == 200  # an empty order is the model's
            continue
        assert answer.status_code == 400 and message in answer.get_json()["error"], (query, answer.get_json())
    # a layer of one page: the grid of today, no page headers, and no second page
    answer = client.get("/api/models/mnist-cnn/grid?layer=Conv2D_3&image=0")
    assert answer.status_code == 200 and "X-Grid-Page" not in answer.headers
    assert client.get("/api/models/mnist-cnn/grid?layer=Conv2D_3&image=0&page=2").status_code == 400


# (lone surrogates cannot travel in a URL at all)
HOSTILE_VALUES = NUMBER_LOOKALIKES + [text for text in ODD_STRINGS[:-1] if text not in ("\ud800", "\udfff")] + [
    "model", "active", "Active", "model,active", "5", "6"]


def test_the_grid_route_answers_any_page_and_order_with_a_grid_or_a_4xx_that_says_why(client):
    base = f"/api/models/many-maps/grid?layer={MANY_MAPS_LAYER}&image=1"
    with captured_errors("app.api.blueprint", "app.main") as failures:
        for key in ("page", "order"):
            for value in HOSTILE_VALUES:
                answer = client.get(base + "&" + urlencode({key: value}))
                assert answer.status_code in (200, 400), (key, value, answer.status_code)
                if answer.status_code == 400:
                    assert answer.get_json()["error"], (key, value)
                else:
                    assert answer.headers["X-Grid-Page"].split("/")[1] == "5"
    assert not failures, describe(failures)
