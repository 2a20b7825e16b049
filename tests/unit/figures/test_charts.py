"""Charts and their shared frame: colour scales, class probabilities, the input image."""

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures import charts
from app.figures.charts import colorscale, input_image_figure, probability_bars, rgb_pixels
from app.figures.codec import decode_array, decode_picture


@pytest.mark.parametrize(
    ("name", "reverse", "low", "high"),
    [("viridis", False, "#440154", "#fde725"), ("jet", True, "rgb(128,0,0)", "rgb(0,0,131)"),
     ("greys", False, "rgb(255,255,255)", "rgb(0,0,0)"), ("magma", False, "#000004", "#fcfdbf"),
     ("inferno", True, "#fcffa4", "#000004")],
)
def test_colorscales_are_explicit_stops(name, reverse, low, high):
    """plotly.js does not know every name (inferno, magma, the _r suffix): the stops are sent explicitly."""
    scale = colorscale(name, reverse)
    assert scale[0] == [0.0, low] and scale[-1] == [1.0, high]
    assert all(a[0] <= b[0] for a, b in zip(scale, scale[1:], strict=False))


def test_unknown_colormap():
    with pytest.raises(ValueError, match="unknown colormap"):
        colorscale("rainbow-unicorn")


def test_bars_highlight_prediction_and_mark_truth():
    figure = probability_bars(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], label=2)
    bar = figure["data"][0]
    assert bar["marker"]["color"].count("#d62728") == 1 and bar["marker"]["color"][1] == "#d62728"
    assert bar["marker"]["line"]["width"] == [0, 0, 3]
    mark = figure["data"][1]
    assert (mark["x"], mark["y"], mark["text"], mark["hoverinfo"]) == (["c"], [0.2], ["true"], "skip")
    assert figure["layout"]["showlegend"] is False  # two traces would otherwise get a legend
    assert "wrong" in figure["layout"]["title"]["text"]
    own = probability_bars(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], label=None)
    assert len(own["data"]) == 1 and own["layout"]["title"]["text"] == "predicted b (70.0%)"  # no "wrong"
    go.Figure(figure)


def test_input_image_grey_and_rgb():
    grey = input_image_figure(np.ones((5, 4, 1), np.float32))
    assert decode_array(grey["data"][0]["z"]).shape == (5, 4)
    rgb = input_image_figure(np.ones((5, 4, 3), np.float32))
    assert decode_picture(rgb["data"][0]).shape == (5, 4, 3)
    go.Figure(grey), go.Figure(rgb)


def test_rgb_pixels_keep_unit_and_byte_ranges_and_stretch_others():
    unit = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    np.testing.assert_array_equal(rgb_pixels(unit), [[[0, 128, 255]]])
    np.testing.assert_array_equal(rgb_pixels(unit * 200), [[[0, 100, 200]]])  # already 0-255
    standardised = np.array([[[-1.0, 0.0, 1.0]], [[np.nan, 0.5, np.inf]]], np.float32)
    np.testing.assert_array_equal(rgb_pixels(standardised), [[[0, 128, 255]], [[0, 191, 0]]])
    assert rgb_pixels(np.full((2, 2, 3), np.nan)).max() == 0



def test_long_titles_go_on_lines_that_fit_a_third_of_an_800_px_window():
    assert charts.fitted_title("mean of class 4 · Conv2D_3") == "mean of class 4 · Conv2D_3"  # short: as it is
    assert charts.fitted_title("mean 4 − mean 9 (red: stronger for 4)") == "mean 4 − mean 9<br>(red: stronger for 4)"
    lines = charts.fitted_title("contributions to class T-shirt/top of backbone/block_3_expand_relu").split("<br>")
    assert len(lines) > 1 and all(len(line) <= charts.TITLE_LINE_CHARS for line in lines)
    assert charts.top_margin(charts.fitted_title("x" * 70)) > charts.top_margin("x")  # the margin makes room


def test_a_colour_photo_travels_as_a_png_of_its_exact_pixels_in_a_tenth_of_the_bytes_of_numbers():
    from app.figures.charts import input_image_figure, rgb_pixels

    rows, cols = np.mgrid[0:224, 0:224] / 223.0
    photo = np.stack([rows, cols, (rows + cols) / 2], axis=-1).astype(np.float32)  # smooth, as photos are
    figure = input_image_figure(photo, "image 3")
    np.testing.assert_array_equal(decode_picture(figure["data"][0]), rgb_pixels(photo))
    as_numbers = len(json.dumps(rgb_pixels(photo).tolist()))
    assert len(json.dumps(figure)) < as_numbers / 10


def test_a_large_one_channel_image_is_a_picture_in_its_colormap_and_a_digit_stays_a_heatmap():
    import plotly.colors

    from app.figures.charts import PICTURE_MIN_PIXELS, colour_lookup, input_image_figure

    channel = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (100, 1))[..., np.newaxis]
    assert channel.shape[0] * channel.shape[1] > PICTURE_MIN_PIXELS
    pixels = decode_picture(input_image_figure(channel, cmap="viridis")["data"][0])
    # plotly's own interpolation of the colour scale, independent of the lookup table
    expected = plotly.colors.sample_colorscale("Viridis", list(np.linspace(0, 1, 256)), colortype="tuple")
    np.testing.assert_allclose(pixels[0], np.array(expected) * 255, atol=1.01)
    np.testing.assert_array_equal(colour_lookup("greys")[[0, 255]], [[255, 255, 255], [0, 0, 0]])

    digit = input_image_figure(np.zeros((28, 28, 1), dtype=np.float32))
    assert digit["data"][0]["type"] == "heatmap"
