"""Activation grids: shapes, hover data, colour codes, separators, map and node labels."""

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.grid import COLORMAPS, layout_for, tile
from app.figures import grids
from app.figures.charts import MARGIN, colorscale
from app.figures.codec import decode_array, typed_array
from app.figures.grids import COLORBAR_PX, activation_heatmap, map_label_image


def test_heatmap_carries_grid_units_and_separators():
    maps = np.random.default_rng(0).random((3, 3, 20)).astype(np.float32)
    grid, layout = tile(maps)
    figure = activation_heatmap(grid, layout, "jet", zrange=(0, 2))
    heatmap = figure["data"][0]
    z = decode_array(heatmap["z"])
    assert z.shape == (9, 24) and z.dtype == np.float32
    np.testing.assert_array_equal(z, grid)
    # No per-cell hover data: the browser names the unit from x/y and the layout in meta (assets/grid_hover.js).
    assert "customdata" not in heatmap and heatmap["hoverinfo"] == "none"
    assert heatmap["meta"] == {"grid": [3, 3, 8, 20], "unit": "map", "outline": grids.CHOSEN_UNIT_COLOR}
    assert (heatmap["zmin"], heatmap["zmax"]) == (0, 2)
    dark, light = figure["data"][1:]  # the separators: a dark and a light trace of 8 - 1 + 3 - 1 segments each
    for separator in (dark, light):
        assert separator["hoverinfo"] == "skip" and separator["x"].count(None) == (8 - 1) + (3 - 1)
    assert dark["line"]["width"] > light["line"]["width"]
    assert figure["layout"]["xaxis"]["range"] == [-0.5, 24 - 0.5] and figure["layout"]["yaxis"]["range"] == [8.5, -0.5]
    go.Figure(figure)  # Plotly accepts it as a valid figure


def test_a_grid_with_a_values_link_travels_as_colour_codes_with_a_true_colour_bar():
    maps = np.random.default_rng(1).normal(size=(5, 5, 20)).astype(np.float32)
    grid, layout = tile(maps)  # 20 maps, 8 to a row: the last row has 4 empty slots
    plain = activation_heatmap(grid, layout, "viridis")
    coded = activation_heatmap(grid, layout, "viridis", values_url="/api/models/m/grid?layer=c&image=0")
    trace = coded["data"][0]
    codes = decode_array(trace["z"])
    assert codes.dtype == np.uint8 and codes.shape == grid.shape and (trace["zmin"], trace["zmax"]) == (0, 255)
    low, high = float(np.nanmin(grid)), float(np.nanmax(grid))
    assert trace["meta"] == {**plain["data"][0]["meta"], "values": "/api/models/m/grid?layer=c&image=0",
                             "range": [low, high], "levels": 255}
    # Each code stands for its value within half a step, computed here from the definition, cell by cell.
    step = (high - low) / 255
    finite = np.isfinite(grid)
    assert np.all(np.abs(low + codes[finite] * step - grid[finite]) <= step / 2 * (1 + 1e-6))
    np.testing.assert_array_equal(np.isnan(grids.heatmap_values(trace)), ~finite)
    # The colour bar is labelled in true values at the codes that stand for them.
    bar = trace["colorbar"]
    for value, text in zip(bar["tickvals"], bar["ticktext"], strict=True):
        assert abs(low + value * step - float(text)) < 1e-9 and 0 <= value <= 255
    # The empty slots are covered (codes have no NaN).
    (no_unit_chosen, blank) = coded["layout"]["shapes"]
    assert no_unit_chosen["visible"] is False
    assert blank["type"] == "rect" and (blank["x0"], blank["x1"]) == (4 * 5 - 0.5, 8 * 5 - 0.5)
    assert (blank["y0"], blank["y1"]) == (2 * 5 - 0.5, 3 * 5 - 0.5)  # the third row of maps
    assert coded["data"][1:] == plain["data"][1:] and plain["layout"]["shapes"] == [no_unit_chosen]
    go.Figure(coded)
    assert len(typed_array(codes)["bdata"]) * 4 == len(plain["data"][0]["z"]["bdata"])  # a quarter of the bytes


def test_a_grid_with_non_finite_values_or_a_diverging_scale_keeps_its_float32_values():
    grid, layout = tile(np.random.default_rng(2).random((4, 4, 8)).astype(np.float32))
    grid[1, 1] = np.inf
    kept = activation_heatmap(grid, layout, values_url="/v")["data"][0]
    assert kept["z"]["dtype"] == "f4" and "values" not in kept["meta"]
    grid[1, 1] = 0.5
    diverging = activation_heatmap(grid, layout, "rdbu", zmid=0.0, values_url="/v")["data"][0]
    assert diverging["z"]["dtype"] == "f4" and diverging["zmid"] == 0.0


def test_a_constant_grid_is_one_colour_without_dividing_by_zero():
    grid, layout = tile(np.full((3, 3, 8), 2.5, dtype=np.float32))
    trace = activation_heatmap(grid, layout, values_url="/v")["data"][0]
    assert not decode_array(trace["z"]).any() and trace["meta"]["range"] == [2.5, 3.5]


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e4, 1e4), st.floats(1e-3, 1e6))
def test_colour_bar_ticks_are_few_round_values_inside_the_range(low, span):
    high = low + span
    ticks = grids.colourbar_ticks(low, high)
    assert 2 <= len(ticks) <= 11
    step = ticks[1] - ticks[0]
    assert np.all(ticks >= low - step * 1e-6) and np.all(ticks <= high + step * 1e-6)
    mantissa = step / 10 ** np.floor(np.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 2.5, 5, 10)) < 1e-4


def test_node_grid_has_no_separators():
    grid, layout = tile(np.arange(100, dtype=np.float32))
    figure = activation_heatmap(grid, layout)
    assert decode_array(figure["data"][0]["z"]).shape == (10, 10)
    assert [shape["visible"] for shape in figure["layout"]["shapes"]] == [False]
    assert figure["data"][0]["meta"] == {"grid": [1, 1, 10, 100], "unit": "node", "outline": grids.CHOSEN_UNIT_COLOR}
    named = activation_heatmap(*tile(np.arange(3, dtype=np.float32)), unit_names=["cat", "dog", "owl"])
    assert named["data"][0]["meta"]["names"] == ["cat", "dog", "owl"]


def _rgba(colour: str) -> tuple[np.ndarray, float]:
    parts = [float(p) for p in colour[colour.index("(") + 1:-1].split(",")]
    return np.array(parts[:3]), (parts[3] if len(parts) == 4 else 1.0)


def _contrast(a: np.ndarray, b: np.ndarray) -> float:
    """WCAG contrast ratio of two sRGB colours (0-255 channels)."""
    def luminance(rgb):
        c = rgb / 255
        return float(np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4) @ [0.2126, 0.7152, 0.0722])

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", COLORMAPS)
def test_map_separators_stand_out_from_every_colour_of_every_colormap(name):
    figure = activation_heatmap(*tile(np.zeros((3, 3, 4), dtype=np.float32)), name)
    separators = {trace["line"]["color"] for trace in figure["data"][1:]}
    scale = colorscale(name)
    # every stop and the midpoint between neighbours
    points = []
    for (_, a), (_, b) in zip(scale, scale[1:], strict=False):
        a_rgb = np.array(plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(a)[0][0]))
        b_rgb = np.array(plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(b)[0][0]))
        points += [a_rgb, (a_rgb + b_rgb) / 2, b_rgb]
    for background in points:
        best = 0.0
        for colour in separators:
            rgb, alpha = _rgba(colour)
            best = max(best, _contrast(alpha * rgb + (1 - alpha) * background, background))
        assert best >= 2.5, f"a separator vanishes on {background} of {name}"


def test_small_node_grids_are_a_labelled_strip():
    figure = activation_heatmap(*tile(np.arange(10, dtype=np.float32)), unit_names=list("abcdefghij"))
    trace = figure["data"][0]
    assert decode_array(trace["z"]).shape == (1, 10) and trace["text"] == [list("abcdefghij")]
    numbered = activation_heatmap(*tile(np.arange(100, dtype=np.float32)))["data"][0]
    assert numbered["text"][3][7] == "37"  # node 37 sits in row 3, column 7 of the 10 x 10 block
    assert "text" not in activation_heatmap(*tile(np.zeros(1152, dtype=np.float32)))["data"][0]


def label_pixels(figure) -> np.ndarray | None:
    """The RGBA pixels of a figure's map-label image (None without one)."""
    import base64
    import io

    from PIL import Image

    images = figure["layout"].get("images")
    if not images:
        return None
    (image,) = images
    assert image["source"].startswith("data:image/png;base64,")
    png = base64.b64decode(image["source"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_maps_large_enough_carry_their_number_in_their_own_corner():
    grid, layout = tile(np.random.default_rng(1).random((26, 26, 32), dtype=np.float32))  # 4 rows of 8 maps
    figure = activation_heatmap(grid, layout, title="t", size_px=(900, 560))
    (image,) = figure["layout"]["images"]
    # the image spans exactly the grid, above it
    assert (image["x"], image["y"], image["sizex"], image["sizey"]) == (-0.5, -0.5, 8 * 26, 4 * 26)
    assert (image["xref"], image["yref"], image["xanchor"], image["yanchor"]) == ("x", "y", "left", "top")
    pixels = label_pixels(figure)
    per_cell = pixels.shape[1] / (8 * 26)
    assert abs(pixels.shape[0] / (4 * 26) - per_cell) < 0.05  # square cells
    for unit in range(32):
        left, top = (unit % 8) * 26 * per_cell, (unit // 8) * 26 * per_cell
        corner = pixels[int(top) + 1:int(top) + 6, int(left) + 1:int(left) + 6]
        centre = pixels[int(top + 13 * per_cell), int(left + 13 * per_cell)]
        assert corner[..., 3].min() > 0, unit  # each map's corner carries its label's box
        assert centre[3] == 0, unit  # the rest of the map shows through
    # a two-digit number takes a wider box than a one-digit one
    box_width = [np.count_nonzero(pixels[int((unit // 8) * 26 * per_cell) + 2,
                                         int((unit % 8) * 26 * per_cell):int((unit % 8 + 1) * 26 * per_cell), 3])
                 for unit in (1, 11)]
    assert box_width[1] > box_width[0] > 0
    go.Figure(figure)

    # a titled 300 x 380 compare card draws 16 rows of 3 x 3 maps under 20 px each: no labels; nor without a size
    small_grid, small_layout = tile(np.zeros((3, 3, 128), dtype=np.float32))
    assert label_pixels(activation_heatmap(small_grid, small_layout, title="t", size_px=(300, 380))) is None
    assert label_pixels(activation_heatmap(small_grid, small_layout, size_px=(900, 560))) is not None
    assert label_pixels(activation_heatmap(grid, layout)) is None
    # node grids are labelled in their cells instead (node_labels)
    node_grid, node_layout = tile(np.zeros(10, dtype=np.float32))
    assert label_pixels(activation_heatmap(node_grid, node_layout, size_px=(900, 560))) is None


def test_a_map_label_needs_twenty_pixels():
    layout = layout_for((4, 4, 8))  # one row of 8 maps of 4 x 4 cells: 32 cells wide
    width_at = lambda map_px: map_px / 4 * 32 + MARGIN["l"] + MARGIN["r"] + COLORBAR_PX  # noqa: E731
    assert map_label_image(layout, (width_at(20), 1000), 40)["sizex"] == 32
    assert map_label_image(layout, (width_at(19.9), 1000), 40) is None


def test_every_grids_colour_bar_says_what_its_values_are():
    from app.figures.comparison import difference_heatmap

    grid, layout = tile(np.random.default_rng(1).random((3, 3, 4), dtype=np.float32))
    plain = grids.activation_heatmap(grid, layout, "jet")
    coded = grids.activation_heatmap(grid, layout, "jet", values_url="/api/x", value_name="mean activation")
    assert plain["data"][0]["colorbar"]["title"]["text"] == "activation"
    assert coded["data"][0]["colorbar"]["title"]["text"] == "mean activation"  # kept when values become codes
    difference = difference_heatmap(np.ones((3, 3, 4), np.float32), "image 7 − image 12")
    assert difference["data"][0]["colorbar"]["title"]["text"] == "difference"


def test_the_chosen_unit_is_outlined_where_it_sits():
    grid, layout = tile(np.zeros((4, 5, 10), np.float32))  # 8 maps to a row: map 9 is row 1, column 1
    outline = grids.activation_heatmap(grid, layout, "jet", chosen_unit=9)["layout"]["shapes"][0]
    assert (outline["x0"], outline["x1"], outline["y0"], outline["y1"]) == (4.5, 9.5, 3.5, 7.5)
    assert outline["line"]["color"] == grids.CHOSEN_UNIT_COLOR and "visible" not in outline
    for nothing in (None, 10, -1):
        assert grids.chosen_unit_shape(layout, nothing)["visible"] is False
    assert grids.chosen_unit_shape(None, 3)["visible"] is False


def test_dead_units_get_a_note_on_their_cell_and_a_sentence_under_the_grid():
    from app.core.grid import tile
    from app.figures.grids import mark_dead_units

    grid, layout = tile(np.zeros((5, 5, 10), np.float32))
    dead = np.zeros(10, bool)
    dead[[3, 9]] = True
    figure = mark_dead_units(activation_heatmap(grid, layout), layout, dead, "map")
    notes = figure["layout"]["annotations"]
    assert [n["text"] for n in notes[:2]] == ["dead", "dead"]
    # map 3: row 0, column 3; map 9: row 1, column 1 (8 to a row); at the bottom middle of their cells
    assert [(n["x"], n["y"]) for n in notes[:2]] == [(3.5 * 5 - 0.5, 5 - 0.5), (1.5 * 5 - 0.5, 10 - 0.5)]
    assert notes[2]["text"] == "2 of 10 maps never fire on the test set (marked dead)"
    # under the grid's lower left corner (2 rows of 5 px), wherever the grid sits in its figure
    assert (notes[2]["xref"], notes[2]["yref"], notes[2]["x"], notes[2]["y"]) == ("x", "y", -0.5, 2 * 5 - 0.5)
    assert notes[2]["yanchor"] == "top" and figure["layout"]["margin"]["b"] > 10
    quiet = activation_heatmap(grid, layout)
    assert mark_dead_units(quiet, layout, np.zeros(10, bool), "map") == activation_heatmap(grid, layout)


def test_a_224_px_first_layer_travels_averaged_down_within_the_view_budget_placed_on_its_own_cells():
    import json

    from app.core.grid import shrink_units

    rng = np.random.default_rng(0)
    activations = np.maximum(rng.normal(size=(112, 112, 32)), 0).astype(np.float32)
    grid, layout = tile(activations)
    figure = activation_heatmap(grid, layout, values_url="/api/grid", size_px=(900, 560))
    heatmap = figure["data"][0]
    shown = tuple(heatmap["meta"]["shown"])
    assert len(json.dumps(figure)) < 150_000
    assert decode_array(heatmap["z"]).shape == (layout.rows * shown[0], layout.cols * shown[1])
    # blocks sit on the grid's own cells: the first block's centre and the spacing of 112 cells per map
    assert heatmap["dx"] == pytest.approx(112 / shown[1]) and heatmap["x0"] == pytest.approx(heatmap["dx"] / 2 - 0.5)
    assert heatmap["dy"] == pytest.approx(112 / shown[0])
    # each block shows its map's mean there, within half a colour step of the whole grid's range
    low, high = heatmap["meta"]["range"]
    assert (low, high) == (pytest.approx(float(grid.min())), pytest.approx(float(grid.max())))
    np.testing.assert_allclose(grids.heatmap_values(heatmap), shrink_units(grid, layout, shown),
                               atol=(high - low) / grids.COLOUR_LEVELS / 2 + 1e-6)
    # the axes still span every cell, so separators, outlines and clicks keep their coordinates
    assert figure["layout"]["xaxis"]["range"] == [-0.5, 896 - 0.5]


def test_the_bundled_models_grids_travel_cell_for_cell():
    grid, layout = tile(np.ones((26, 26, 32), np.float32))
    heatmap = activation_heatmap(grid, layout, values_url="/api/grid", size_px=(900, 560))["data"][0]
    assert "shown" not in heatmap["meta"] and "dx" not in heatmap
    assert decode_array(heatmap["z"]).shape == grid.shape


def test_a_page_of_maps_names_outlines_labels_and_marks_its_true_map_numbers():
    from app.core.grid import map_page, tile_page
    from app.figures.grids import mark_dead_units, mark_page

    values = np.random.default_rng(2).random((7, 7, 300), dtype=np.float32)
    page = map_page(values, "active", 64, 3)
    grid, layout = tile_page(values, page)
    units = page.units.tolist()
    figure = mark_page(activation_heatmap(grid, layout, size_px=(900, 560), chosen_unit=units[9],
                                          unit_numbers=page.units), page)
    meta = figure["data"][0]["meta"]
    assert meta["units"] == units and meta["grid"] == [7, 7, 8, 64]
    assert meta["page"] == {"page": 3, "pages": 5, "per_row": 8, "first": 129, "last": 192, "of": 300,
                            "order": "active"}
    # the chosen map is outlined at its place on the page (place 9: row 1, column 1), not at its number's
    outline = figure["layout"]["shapes"][0]
    assert (outline["x0"], outline["y0"]) == (7 - 0.5, 7 - 0.5)
    elsewhere = next(unit for unit in range(300) if unit not in units)  # a map on another page: no outline
    assert grids.chosen_unit_shape(layout, elsewhere, units)["visible"] is False
    # the labels are the true numbers: not the places' 0-63
    by_place = activation_heatmap(grid, layout, size_px=(900, 560))
    assert figure["layout"]["images"][0]["source"] != by_place["layout"]["images"][0]["source"]
    # dead maps are marked where they sit on the page; the sentence counts the layer
    dead = np.zeros(300, bool)
    dead[[units[2], units[10], elsewhere]] = True
    marked = mark_dead_units(activation_heatmap(grid, layout), layout, dead, "map", page.units)
    notes = marked["layout"]["annotations"]
    on_page = sorted(place for place, unit in enumerate(units) if dead[unit])
    assert [(n["x"], n["y"]) for n in notes[:-1]] == [((place % 8 + 0.5) * 7 - 0.5, (place // 8 + 1) * 7 - 0.5)
                                                       for place in on_page]
    assert notes[-1]["text"] == f"{int(dead.sum())} of 300 maps never fire on the test set (marked dead)"
