"""A user's own digit: rasterising strokes, decoding uploads safely, and MNIST's preprocessing recipe."""

from __future__ import annotations

import dataclasses
import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.core import digits
from app.core.digits import MNIST, RESIZE, Recipe
from app.core.errors import InvalidInput, TooLarge
from tests.digit_strokes import huge_png, place

MNIST_RECIPE = Recipe(MNIST, 28, 28, 1, 0.0, 1.0)


def drawn(digit: int, left: float, top: float, height: float, width: float = 16, size: int = 280) -> np.ndarray:
    polylines, pen, side = digits.parse_strokes(place(digit, left, top, height), width, size)
    return digits.rasterise(polylines, pen, side)


def png_bytes(pixels: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_horizontal_stroke_covers_its_width_and_a_dot_its_disc():
    canvas = digits.rasterise([np.array([[20.0, 50.0], [80.0, 50.0]])], 10.0, 100)
    column = canvas[:, 50]
    assert column.sum() == pytest.approx(10.0, abs=0.01)  # ink across the stroke adds up to the pen width
    assert canvas[50, 50] == 1.0 and canvas[30, 50] == 0.0
    dot = digits.rasterise([np.array([[50.0, 50.0]])], 20.0, 100)
    assert dot.sum() == pytest.approx(np.pi * 10**2, rel=0.02)  # a round cap: the disc's area
    assert digits.rasterise([np.array([[50.0, 50.0]])], 20.0, 100)[50, 40] > 0.4  # round, not a point



def rasterised_pixel_by_pixel(polylines: list[np.ndarray], width: float, size: int) -> np.ndarray:
    """The rasteriser's definition computed independently, in float64 over the whole canvas, one segment at a
    time: a pixel's ink is clip(width / 2 + 0.5 - d, 0, 1) for the distance d of its centre to the nearest
    segment."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    xs, ys = centres[None, :], centres[:, None]
    nearest = np.full((size, size), np.inf)
    for points in polylines:
        pairs = [(points[0], points[0])] if len(points) == 1 else zip(points[:-1], points[1:], strict=True)
        for (x0, y0), (x1, y1) in pairs:
            dx, dy = x1 - x0, y1 - y0
            length2 = dx * dx + dy * dy
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1) if length2 else np.zeros((1, 1))
            nearest = np.minimum(nearest, np.hypot(xs - x0 - t * dx, ys - y0 - t * dy))
    return np.clip(width / 2 + 0.5 - nearest, 0, 1)


@pytest.mark.parametrize("pen", [1.0, 7.5, 18.0, 40.0])
def test_the_rasteriser_inks_each_pixel_by_its_distance_to_the_nearest_segment(pen):
    rng = np.random.default_rng(int(pen * 10))
    drawings = [digits.parse_strokes(place(digit, left, top, height), pen, 280)[0]
                for digit, left, top, height in [(0, 40, 30, 200), (4, 5, 5, 100), (8, 150, 100, 120)]]
    drawings += [
        [np.array([[-pen, -pen], [280 + pen, 280 + pen]]), np.array([[1.0, 279.0]])],  # off the edges; a dot
        [np.array([[50.0, 50.0], [50.0, 50.0], [120.0, 51.0]]), np.array([[200.0, 20.0], [20.0, 260.0]])],  # long
        [rng.uniform(0, 280, (40, 2)), rng.uniform(0, 280, (3, 2))],  # jagged, crossing
    ]
    for polylines in drawings:
        canvas = digits.rasterise(polylines, pen, 280)
        assert canvas.shape == (280, 280) and canvas.dtype == np.float32
        np.testing.assert_allclose(canvas, rasterised_pixel_by_pixel(polylines, pen, 280), rtol=0, atol=1e-5)



def test_the_rasteriser_inks_the_same_in_chunks_and_keeps_a_huge_pen_in_bounded_memory(monkeypatch):
    polylines = [np.array([[-3.0, 10.0], [250.0, 270.0], [30.0, 200.0]]), np.array([[140.0, 140.0]])]
    whole = digits.rasterise(polylines, 18.0, 280)
    monkeypatch.setattr(digits, "RASTER_CHUNK", 3000)  # a piece or two at a time
    np.testing.assert_array_equal(digits.rasterise(polylines, 18.0, 280), whole)
    monkeypatch.undo()
    tracemalloc.start()
    try:
        huge = [np.array([[-1000.0, -1000.0], [3000.0, 3000.0]])]  # from a pen width out to a pen width out
        canvas = digits.rasterise(huge, 1000.0, 2000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20  # chunks of 8 MB arrays, not [pieces, 1502, 1502] at once (over 1 GB)
    # float32 distances of up to ~1,500 px are good to a few hundred-thousandths of a pixel
    np.testing.assert_allclose(canvas, rasterised_pixel_by_pixel(huge, 1000.0, 2000), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("left", "top", "height", "width"), [(10, 10, 70, 8), (100, 60, 180, 18), (150, 160, 100, 28)])
@pytest.mark.parametrize("digit", [1, 4, 7, 8])
def test_mnist_recipe_puts_the_ink_box_at_20_px_and_the_centre_of_mass_at_the_centre(digit, left, top, height,
                                                                                      width):
    image = digits.preprocess(drawn(digit, left, top, height, width), MNIST_RECIPE, ink=True)
    assert image.shape == (28, 28, 1) and image.dtype == np.float32
    ink = image[:, :, 0]
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20
    # the centre of mass, computed here with plain sums, within half a pixel of the field's centre (13.5 in
    # pixel-centre coordinates); a whole-pixel shift can leave exactly 0.5 (a symmetric 8 of odd width), and
    # float32 pixels put that a few millionths over
    total = ink.sum(dtype=np.float64)
    row = (ink * np.arange(28)[:, None]).sum() / total
    col = (ink * np.arange(28)[None, :]).sum() / total
    assert abs(row - 13.5) <= 0.5 + 1e-5 and abs(col - 13.5) <= 0.5 + 1e-5
    assert ink.min() >= 0.0 and ink.max() <= 1.0 and ink.max() > 0.9


def test_the_value_range_follows_the_test_set_and_centre_off_is_a_plain_resize():
    canvas = drawn(7, 10, 10, 70)
    scaled = digits.preprocess(canvas, Recipe(MNIST, 28, 28, 1, 0.0, 255.0), ink=True)
    unit = digits.preprocess(canvas, MNIST_RECIPE, ink=True)
    np.testing.assert_allclose(scaled, unit * 255, rtol=1e-5, atol=1e-4)
    plain = digits.preprocess(canvas, dataclasses.replace(MNIST_RECIPE, centre=False), ink=True)[:, :, 0]
    # a plain resize of the 280 px canvas: each output pixel is the mean of a 10 x 10 block
    np.testing.assert_allclose(plain, canvas.reshape(28, 10, 28, 10).mean(axis=(1, 3)), atol=1e-5)
    assert plain[14:].sum() == 0  # the small 7 stays in the top-left corner


def test_a_photo_of_dark_ink_on_paper_is_inverted_and_stretched():
    canvas = drawn(3, 60, 40, 200)
    paper = (0.85 - 0.7 * canvas)[:, :, None].repeat(3, axis=2)  # grey paper, dark grey ink, as RGB
    from_photo = digits.preprocess(paper, MNIST_RECIPE)
    from_drawing = digits.preprocess(canvas, MNIST_RECIPE, ink=True)
    np.testing.assert_allclose(from_photo, from_drawing, atol=0.02)


def test_area_weights_average_blocks_and_keep_the_mean():
    weights = digits.area_weights(6, 3)
    np.testing.assert_allclose(weights, [[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0, 0], [0, 0, 0, 0, 0.5, 0.5]])
    pixels = np.random.default_rng(1).random((37, 23)).astype(np.float32)
    resized = digits.resize_area(pixels, 20, 11)
    assert resized.mean() == pytest.approx(pixels.mean(), rel=1e-4)
    np.testing.assert_allclose(digits.area_weights(2, 4).sum(axis=1), 1.0)


def test_recipes_follow_the_input_shape_and_test_set():
    dark = np.zeros((5, 28, 28, 1), np.float32)
    dark[:, 10:18, 10:18] = 1.0
    assert digits.choose_recipe(dark).kind == MNIST
    assert digits.choose_recipe(1.0 - dark).kind == RESIZE  # light background: not MNIST-like
    assert digits.choose_recipe(dark, {"preprocessing": "resize"}).kind == RESIZE
    colour = digits.choose_recipe(np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32) * 2 - 1)
    assert (colour.kind, colour.height, colour.channels) == (RESIZE, 32, 3)
    assert colour.low < -0.9 and colour.high > 0.9
    with pytest.raises(InvalidInput, match="preprocessing"):
        digits.choose_recipe(dark, {"preprocessing": "magic"})


def test_an_rgb_model_gets_rgb_in_its_range():
    recipe = Recipe(RESIZE, 32, 32, 3, -1.0, 1.0, dark_background=False)
    photo = np.zeros((64, 64, 3), np.float32)
    photo[:, :, 0] = 1.0  # red
    image = digits.preprocess(photo, recipe)
    assert image.shape == (32, 32, 3)
    np.testing.assert_allclose(image[0, 0], [1.0, -1.0, -1.0])
    drawing = digits.preprocess(drawn(1, 60, 40, 200), recipe, ink=True)  # dark ink on the light background
    assert drawing.shape == (32, 32, 3) and drawing[0, 0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("strokes", "width", "size", "reason"),
    [
        ([], 10, 280, "empty"),
        ([[]], 10, 280, "empty"),
        ("x", 10, 280, "list of strokes"),
        ([[[1, 2], [3]]], 10, 280, r"\[x, y\] points"),
        ([[[1, True]]], 10, 280, r"\[x, y\] points"),
        ([[[1e9, 2]]], 10, 280, "outside"),
        ([[[10, 10], [10**400, 2]]], 10, 280, "outside"),  # beyond a float: numpy raises OverflowError
        ([[[-(10**400), 2]]], 10, 280, "outside"),
        ([[[10, 10]]], 0, 280, "pen width"),
        ([[[10, 10]]], 10, 1e6, "canvas side"),
        ([[[10, 10]]] * 201, 10, 280, "strokes"),
        ([[[10, 10]] * 20_001], 10, 280, "points"),
    ],
)
def test_malformed_drawings_are_refused_with_a_reason(strokes, width, size, reason):
    with pytest.raises(InvalidInput, match=reason):
        digits.parse_strokes(strokes, width, size)


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(st.lists(st.one_of(st.integers(), st.integers(-(10**400), 10**400), st.floats()), min_size=2, max_size=6))
def test_any_json_number_as_a_coordinate_is_drawn_or_refused_with_a_reason(numbers):
    points = [list(pair) for pair in zip(numbers[::2], numbers[1::2], strict=False)]
    inside = all(-10 <= c <= 290 for point in points for c in point)  # the pen width (10) past each edge
    try:
        polylines, _, _ = digits.parse_strokes([points], 10, 280)
    except InvalidInput as exc:
        assert not inside and "outside the 280 x 280 canvas" in str(exc)
    else:
        assert inside and np.array_equal(polylines[0], np.array(points, dtype=np.float64))


def test_a_drawings_cost_is_known_before_drawing_and_too_costly_a_drawing_is_refused():
    # by hand: an 18 px pen cuts an 80 px stroke into ceil(80 / 9) = 9 pieces, each inking a window of
    # ceil(9 + 2 * 9.5) + 1 = 29 px square; a dot is one piece
    assert digits.raster_values([np.array([[10.0, 10.0], [90.0, 10.0]])], 18.0) == 9 * 29 * 29
    assert digits.raster_values([np.array([[10.0, 10.0]])], 18.0) == 29 * 29
    for digit in range(10):
        polylines, pen, _ = digits.parse_strokes(place(digit, 70, 40, 200), 18, 280)
        assert digits.raster_values(polylines, pen) < digits.MAX_RASTER_VALUES / 100

    scribble = [[[0, 0], [2000, 2000]] * 10_000]  # within every other limit: 20,000 points on the canvas
    with pytest.raises(InvalidInput, match="too long for its pen") as refused:
        digits.parse_strokes(scribble, 0.5, 2000)
    assert f"{digits.MAX_RASTER_VALUES:,} are taken" in str(refused.value)
    fewer = [[[0, 0], [2000, 2000]] * 200]  # 399 diagonals: ~17 million values, taken
    assert len(digits.parse_strokes(fewer, 0.5, 2000)[0][0]) == 400


def test_a_blank_picture_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        digits.preprocess(np.zeros((280, 280), np.float32), MNIST_RECIPE, ink=True)
    with pytest.raises(InvalidInput, match="blank"):
        digits.preprocess(np.full((50, 50, 3), 0.9, np.float32), MNIST_RECIPE)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_every_upload_format_decodes_to_the_same_picture(fmt):
    canvas = drawn(2, 60, 40, 200)
    grey = np.round(255 * (1 - canvas)).astype(np.uint8)
    decoded = digits.decode_image(png_bytes(grey, fmt=fmt), 10**7)
    assert decoded.shape == (280, 280, 3) and decoded.dtype == np.float32
    ours = digits.preprocess(decoded, MNIST_RECIPE)
    direct = digits.preprocess(canvas, MNIST_RECIPE, ink=True)
    assert np.abs(ours - direct).mean() < 0.03  # JPEG and WebP are lossy; the digit is the same


def test_transparency_is_paper_and_big_photos_are_reduced():
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[100:200, 140:160, 3] = 255  # a black bar on a transparent background
    decoded = digits.decode_image(png_bytes(rgba, "RGBA"), 10**7)
    assert decoded[0, 0].tolist() == [1.0, 1.0, 1.0] and decoded[150, 150].tolist() == [0.0, 0.0, 0.0]
    big = digits.decode_image(png_bytes(np.full((3000, 1500), 200, np.uint8)), 10**7)
    assert max(big.shape[:2]) <= digits.MAX_DECODED_SIDE and big.shape[0] == 2 * big.shape[1]


def test_hostile_and_broken_uploads_are_refused_before_decoding():
    bomb = huge_png()
    assert len(bomb) < 1_000_000
    with pytest.raises(TooLarge, match="too many pixels"):
        digits.decode_image(bomb, 10**7)
    with pytest.raises(TooLarge, match=r"too many pixels \(8000 x 8000\)"):  # under Pillow's limit, over ours
        digits.decode_image(huge_png(8000), 10**7)
    with pytest.raises(TooLarge, match="larger than the limit"):
        digits.decode_image(b"\x89PNG" + b"0" * 2000, 1000)
    good = png_bytes(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    with pytest.raises(InvalidInput, match="truncated or corrupt"):
        digits.decode_image(good[: len(good) // 2], 10**7)
    with pytest.raises(InvalidInput, match="not an image"):
        digits.decode_image(b"%PDF-1.4 not a picture", 10**7)
    with pytest.raises(InvalidInput, match="not an image"):  # a format Pillow reads, but not one of ours
        buffer = io.BytesIO()
        Image.new("L", (8, 8)).save(buffer, format="TIFF")
        digits.decode_image(buffer.getvalue(), 10**7)
    with pytest.raises(InvalidInput, match="empty"):
        digits.decode_image(b"", 10**7)


def test_a_raw_array_must_have_the_models_shape_and_range():
    ok = digits.check_array(np.zeros((28, 28)).tolist(), MNIST_RECIPE)
    assert ok.shape == (28, 28, 1)
    for bad, reason in [([[1, 2], [3, 4]], "shape"), ("abc", "shape"), ([["a"] * 28] * 28, "numbers"),
                        (np.full((28, 28), 5.0).tolist(), "range")]:
        with pytest.raises(InvalidInput, match=reason):
            digits.check_array(bad, MNIST_RECIPE)
    nan = np.zeros((28, 28)).tolist()
    nan[3][3] = float("nan")
    with pytest.raises(InvalidInput, match="finite"):
        digits.check_array(nan, MNIST_RECIPE)
    huge = np.zeros((28, 28)).tolist()
    huge[3][3] = 10**400  # beyond a float: numpy raises OverflowError
    with pytest.raises(InvalidInput, match="finite"):
        digits.check_array(huge, MNIST_RECIPE)


def test_previews_encode_what_the_model_sees():
    recipe = Recipe(MNIST, 28, 28, 1, 0.0, 255.0)
    image = digits.preprocess(drawn(5, 60, 40, 200), recipe, ink=True)
    png = digits.encode_png(digits.preview(image, recipe))
    back = np.asarray(Image.open(io.BytesIO(png)))
    np.testing.assert_allclose(back, image[:, :, 0], atol=0.6)


@pytest.mark.parametrize("shape", [(1, 1), (28, 28, 1), (17, 40), (9, 13, 3)])
def test_pngs_decode_with_pillow_to_the_pixels_rounded_to_bytes(shape):
    values = np.random.default_rng(sum(shape)).uniform(-0.2, 1.2, shape)
    with Image.open(io.BytesIO(digits.encode_png(values))) as image:
        image.load()  # checks every chunk's CRC and the compressed data
        assert image.mode == ("RGB" if shape[-1] == 3 else "L")
        back = np.asarray(image)
    expected = np.round(np.clip(values, 0, 1) * 255).astype(np.uint8).reshape(back.shape)
    np.testing.assert_array_equal(back, expected)
    with pytest.raises(InvalidInput, match="PNG"):
        digits.encode_png(np.zeros((4, 4, 2)))
