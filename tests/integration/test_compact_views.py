"""The explorer's view as the browser gets it: colour codes that stand for the engine's values and, at the grid's
values link, the engine's exact float32 values; the same figure and values whether the answer is compressed (zstd,
brotli, gzip) or not; clicks that name their unit without per-cell hover data."""

import gzip
import json

import brotli
import numpy as np
import pytest
from backports import zstd

from app.core.grid import layout_for
from app.figures.codec import decode_array
from app.figures.grids import COLOUR_LEVELS
from tests.figure_checks import assert_codes_stand_for

DECODERS = {"zstd": zstd.decompress, "br": brotli.decompress, "gzip": gzip.decompress}


@pytest.fixture
def client(app_store):
    from app.main import server

    return server.test_client()


def render_body(client, layer: str, image: int) -> dict:
    """The explorer's render callback as dash-renderer posts it (its outputs read from ``/_dash-dependencies``)."""
    from app.pages import explore
    from app.ui.navigation import STILL_COMPUTING_POLL

    key = next(item["output"] for item in client.get("/_dash-dependencies").get_json()
               if item["output"].startswith(f"..{explore.HEATMAP}.figure..."))
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]}
               for part in key[2:-2].split("...")]
    values = {explore.IDS.model: "mnist-cnn", explore.LAYER: layer, explore.CMAP: "viridis",
              explore.REVERSE: False, explore.SCALE: False, explore.FIXED: False}
    inputs = [{"id": component, "property": "value", "value": value} for component, value in values.items()]
    inputs.append({"id": explore.OWN_IMAGE, "property": "data", "value": None})  # a test image, not your own
    inputs.append({"id": STILL_COMPUTING_POLL, "property": "n_intervals", "value": None})  # no job waited for
    inputs.append({"id": explore.ORDER, "property": "value", "value": "model"})
    inputs.append({"id": explore.PAGE, "property": "data", "value": None})  # no page asked for
    inputs.append({"id": explore.IMAGE_ASKED, "property": "data", "value": {"image": image, "at": 1}})
    state = [{"id": explore.IMAGE, "property": "value", "value": image},
             {"id": explore.UNIT.unit, "property": "data", "value": None},  # no unit chosen
             {"id": explore.IDS.message, "property": "children", "value": None}]
    return {"output": key, "outputs": outputs, "inputs": inputs, "state": state,
            "changedPropIds": [f"{explore.IMAGE_ASKED}.data"]}


def test_view_values_decode_to_the_engines_and_every_encoding_decodes_to_the_same_figure(client, app_store):
    from tests.app_context import served_context

    body = render_body(client, "Conv2D_1", 7)
    plain = client.post("/_dash-update-component", json=body)
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    expected = json.loads(plain.get_data())

    for encoding, decode in DECODERS.items():
        answer = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": encoding})
        assert answer.status_code == 200 and answer.headers["Content-Encoding"] == encoding
        raw = answer.get_data()
        assert len(raw) < len(plain.get_data()) / 2, encoding
        assert json.loads(decode(raw)) == expected, encoding

    heatmap = next(value["figure"] for value in expected["response"].values()
                   if isinstance(value.get("figure"), dict) and value["figure"]["data"][0].get("meta"))
    trace = heatmap["data"][0]
    assert "customdata" not in trace
    # An independent path to the same numbers: the truncated sub-model to Conv2D_1, tiled by a plain double loop.
    loaded = served_context().store.get("mnist-cnn")
    maps = np.asarray(loaded.engine.submodel("Conv2D_1")(loaded.images[7:8]))[0]
    size, n_maps = maps.shape[0], maps.shape[-1]
    tiled = np.full((4 * size, 8 * size), np.nan, dtype=np.float32)
    for unit in range(n_maps):
        row, col = divmod(unit, 8)
        tiled[row * size:(row + 1) * size, col * size:(col + 1) * size] = maps[..., unit]
    assert_codes_stand_for(trace, tiled)
    # The colour scale's ends are the grid's own range, so the codes use every level from the lowest to the highest.
    codes = decode_array(trace["z"])
    assert codes.min() == 0 and codes.max() == COLOUR_LEVELS
    assert trace["meta"]["range"] == [float(np.nanmin(tiled)), float(np.nanmax(tiled))]

    # The values link (what the hover label fetches) gives the engine's exact float32 values, compressed or not.
    link = trace["meta"]["values"]
    exact = client.get(link)
    assert exact.status_code == 200 and exact.mimetype == "application/octet-stream"
    assert exact.headers["X-Grid-Shape"] == f"{4 * size},{8 * size}"
    values = np.frombuffer(exact.get_data(), dtype="<f4").reshape(4 * size, 8 * size)
    np.testing.assert_allclose(values, tiled, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(values, loaded.engine.tiled("Conv2D_1", 7)[0])  # exactly the engine's values
    for encoding, decode in DECODERS.items():
        answer = client.get(link, headers={"Accept-Encoding": encoding})
        assert answer.headers["Content-Encoding"] == encoding and len(answer.get_data()) < len(exact.get_data())
        assert decode(answer.get_data()) == exact.get_data(), encoding


def test_the_values_link_of_the_standardised_view_and_of_a_changed_model(client, app_store):
    from app.core.grid import standardize_and_clip
    from tests.app_context import served_context

    loaded = served_context().store.get("mnist-cnn")
    link = f"/api/models/mnist-cnn/grid?layer=Conv2D_2&image=5&scaled=1&version={loaded.version}"
    values = np.frombuffer(client.get(link).get_data(), dtype="<f4")
    maps = np.asarray(loaded.engine.submodel("Conv2D_2")(loaded.images[5:6]))[0]
    np.testing.assert_allclose(np.sort(values[np.isfinite(values)]), np.sort(standardize_and_clip(maps).ravel()),
                               rtol=1e-5, atol=1e-6)
    stale = client.get(link.replace(loaded.version, "0" * len(loaded.version)))
    assert stale.status_code == 409 and "changed" in stale.get_json()["error"]
    for bad in ("scaled=2", "image=99999", "image=u:zz", "layer=Nope"):
        key = bad.split("=")[0]
        query = "&".join(part if not part.startswith(key + "=") else bad for part in link.split("?")[1].split("&"))
        assert client.get(f"/api/models/mnist-cnn/grid?{query}").status_code in (400, 404), bad


@pytest.mark.parametrize(
    ("point", "unit"),
    [({"x": 2, "y": 1}, 0), ({"x": 26 * 3 + 5, "y": 26 + 25}, 11), ({"x": 207, "y": 103}, 31),
     ({"x": 208, "y": 0}, None), ({"x": 1.5, "y": 1}, 0), ({"x": -0.5, "y": 1}, None), ({"x": 1e300, "y": 1}, None),
     ({"y": 1}, None)],
)
def test_a_click_names_the_unit_under_its_cell(point, unit):
    from app.ui.unit_panel import unit_from_click

    assert unit_from_click({"points": [point]}, layout_for((26, 26, 32))) == unit


def test_a_click_on_a_block_of_an_averaged_down_grid_names_the_map_it_belongs_to():
    from app.ui.unit_panel import unit_from_click

    layout = layout_for((112, 112, 32))
    step = 112 / 54  # 54 blocks a map: each block's centre lies inside its own map
    first_of_map_3 = 3 * 54 * step + step / 2 - 0.5
    last_of_map_2 = first_of_map_3 - step
    assert unit_from_click({"points": [{"x": first_of_map_3, "y": 0.5}]}, layout) == 3
    assert unit_from_click({"points": [{"x": last_of_map_2, "y": 0.5}]}, layout) == 2


def test_the_smoke_checks_explorer_request_is_what_the_app_answers(client):
    """``scripts/smoke_run.py`` (the first step of CI) posts the explorer's render from the app's own dependency
    list; a new input on that callback, or a browser-side callback on the same figure, must not break it."""
    from tests.unit.test_runtime_requirements import smoke_run

    dependencies = client.get("/_dash-dependencies").get_json()
    body = smoke_run.callback_request(dependencies, "explore-heatmap.figure", smoke_run.EXPLORER_RENDER_INPUTS)
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200
    heatmap = answer.get_json()["response"]["explore-heatmap"]["figure"]["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["z"]["dtype"] == "u1"
