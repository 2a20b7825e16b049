"""What ◀ ▶ and the arrow keys draw in the browser (assets/image_stepping.js) comes from the explorer-view route:
its figures, caption and link are the ones the page's render callback answers for the same view, its grid's exact
values are the layer's outputs as an independent Keras sub-model computes them, and hostile queries are a 4xx."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import numpy as np
import pytest

from tests.conftest import layer_outputs
from tests.integration.hostile.support import NUMBER_LOOKALIKES, ODD_STRINGS, captured_errors, describe


@pytest.fixture
def client(app_store):
    from app.main import server

    return server.test_client()


def rendered(client, layer: str, image: int, cmap: str = "viridis", scale: bool = False) -> dict:
    """The page's render callback's answer, as dash-renderer gets it after a typed image number."""
    from tests.unit.test_runtime_requirements import smoke_run

    dependencies = client.get("/_dash-dependencies").get_json()
    body = smoke_run.callback_request(dependencies, "explore-heatmap.figure", {
        **smoke_run.EXPLORER_RENDER_INPUTS, "explore-model.value": "mnist-cnn", "explore-layer.value": layer,
        "explore-image.value": image, "explore-cmap.value": cmap, "explore-scale.value": scale,
        "explore-image-asked.data": {"image": image, "at": 1}})
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.get_data()[:300]
    return json.loads(answer.get_data())["response"]


def stepped(client, **query) -> dict:
    answer = client.get(f"/api/models/mnist-cnn/explorer-view?{urlencode(query)}")
    assert answer.status_code == 200, answer.get_data()[:300]
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.get_json()


@pytest.mark.parametrize(("layer", "image", "cmap", "scale"), [("Conv2D_1", 7, "viridis", False),
                                                               ("Conv2D_3", 251, "jet", True),
                                                               ("Dense_2", 3, "greys", False)])
def test_a_stepped_view_is_what_the_render_callback_draws(client, layer, image, cmap, scale):
    page = rendered(client, layer, image, cmap, scale)
    answer = stepped(client, layer=layer, image=image, cmap=cmap, **({"scale": 1} if scale else {}))
    assert answer["heatmap"] == page["explore-heatmap"]["figure"]
    assert answer["input"] == page["explore-input"]["figure"]
    assert answer["probabilities"] == page["explore-probabilities"]["figure"]
    assert answer["caption"] == page["explore-image-info"]["children"]
    assert answer["query"] == page["explore-view"]["data"]
    assert answer["image"] == image
    assert f"Image {image}" in answer["caption"][0]["props"]["children"]


def test_a_stepped_grids_exact_values_are_the_layers_outputs_from_keras(client):
    from tests.app_context import served_context

    answer = stepped(client, layer="Conv2D_2", image=412)
    meta = answer["heatmap"]["data"][0]["meta"]
    values = client.get(meta["values"])
    assert values.status_code == 200
    height, width = (int(n) for n in values.headers["X-Grid-Shape"].split(","))
    grid = np.frombuffer(values.get_data(), "<f4").reshape(height, width)
    unit_height, unit_width, per_row, count = meta["grid"]
    expected = layer_outputs(served_context().store.get("mnist-cnn"), "Conv2D_2", [412])[0]
    for unit in (0, 17, count - 1):
        top, left = (unit // per_row) * unit_height, (unit % per_row) * unit_width
        np.testing.assert_allclose(grid[top:top + unit_height, left:left + unit_width], expected[..., unit],
                                   rtol=1e-5, atol=1e-5)


def test_the_chosen_unit_is_outlined_as_the_page_outlines_it(client):
    answer = stepped(client, layer="Conv2D_1", image=3, unit=9)
    outline = answer["heatmap"]["layout"]["shapes"][0]
    assert outline.get("visible", True) is not False
    unit_height, unit_width, per_row, _ = answer["heatmap"]["data"][0]["meta"]["grid"]
    assert outline["x0"] == (9 % per_row) * unit_width - 0.5
    assert outline["y0"] == (9 // per_row) * unit_height - 0.5


@pytest.mark.parametrize(("query", "status", "says"), [
    ({"layer": "Conv2D_1", "image": 1000}, 404, "out of range"),
    ({"layer": "nope", "image": 3}, 404, "no layer"),
    ({"image": 3}, 400, "layer"),
    ({"layer": "Conv2D_1", "image": "x"}, 400, "whole number"),
    ({"layer": "Conv2D_1", "image": 3, "cmap": "bogus"}, 400, "cmap"),
    ({"layer": "Conv2D_1", "image": 3, "page": "0"}, 400, "page"),
    ({"layer": "Conv2D_1", "image": 3, "order": "sideways"}, 400, "order"),
    ({"layer": "Conv2D_1", "image": 3, "version": "not-this-one"}, 409, "changed"),
    ({"layer": "Conv2D_1", "image": "u:" + "0" * 20}, 404, ""),
    ({"layer": "Conv2D_1", "image": 3, "unit": "x" * 3000}, 400, "longer"),
])
def test_what_cannot_be_drawn_is_a_4xx_that_says_why(client, query, status, says):
    answer = client.get(f"/api/models/mnist-cnn/explorer-view?{urlencode(query)}")
    assert answer.status_code == status, answer.get_data()[:300]
    assert says in answer.get_json()["error"]


def test_hostile_values_of_every_key_are_answered_without_a_server_error(client):
    keys = ["layer", "image", "cmap", "reverse", "scale", "fixed", "unit", "page", "order", "version"]
    with captured_errors("app", "flask.app") as errors:
        for key in keys:
            for value in [*NUMBER_LOOKALIKES[:-4], *ODD_STRINGS[:-1]]:
                query = {"layer": "Conv2D_1", "image": "3", key: value}
                path = "/api/models/mnist-cnn/explorer-view?" + "&".join(
                    f"{name}={quote(text, safe='', errors='surrogatepass')}" for name, text in query.items())
                answer = client.get(path)
                assert answer.status_code < 500, (key, value, answer.get_data()[:200])
                if answer.status_code >= 400:
                    assert answer.get_json()["error"]
    assert not errors, describe(errors)
    assert client.get("/api/models/no-such-model/explorer-view?layer=Conv2D_1&image=3").status_code == 404
