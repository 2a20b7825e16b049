"""A user's own digit: strokes drawn on a canvas or an uploaded picture, turned into what the model was trained on.

Three steps, each a pure function:

1. :func:`rasterise` draws strokes (polylines in canvas pixels with a pen width) anti-aliased into a greyscale
   canvas, ink 1 on background 0, with round caps and joins (a pixel's ink is how much of it lies within half the
   pen width of the polyline).
2. :func:`decode_image` reads an uploaded PNG, JPEG, GIF, BMP or WebP with Pillow into floats in [0, 1], refusing
   files over the byte limit before decoding, images of more pixels than a photo has (decompression bombs) before
   their pixels are decoded, and truncated files.
3. :func:`preprocess` applies the model's :class:`Recipe` (chosen by :func:`choose_recipe` from the model's input
   shape and test set, or ``meta.json``'s ``preprocessing``):

   - ``mnist``: MNIST's own recipe: greyscale, invert if the background is light, crop to the ink, scale the
     longer side to 20 px keeping the aspect ratio (area averaging), pad to 28 x 28 and shift so that the centre of
     mass is at the centre, then scale to the test set's value range. Measured on ``mnist-cnn``: a small 7 drawn
     in a corner and plainly resized is read as a confident 6; through this recipe it is a 7.
   - ``resize``: any other model: the whole picture resized to the input size (area averaging), converted to the
     channels the model takes (RGB models get RGB), scaled to the test set's value range.

   ``centre=False`` skips the crop and the centring (a plain resize of the whole picture), to show why they matter.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from app.core.errors import InvalidInput, TooLarge
from app.core.limits import format_bytes, pixel_range

MNIST = "mnist"
RESIZE = "resize"
RECIPES = (MNIST, RESIZE)

# MNIST's geometry: the ink's longer side scaled to 20 px, centred by its centre of mass in a 28 x 28 field.
MNIST_SIZE = 28
MNIST_BOX = 20
# A pixel counts as ink for the crop when it holds this much of the full ink value: below it are a photo's paper
# grain and JPEG ringing, which would otherwise widen the crop box.
INK_THRESHOLD = 0.15
# Formats an upload may have (Pillow's names); anything else is refused before Pillow tries its other decoders.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# The most pixels an uploaded picture may have: a 48-megapixel phone photo fits; a 50,000 x 50,000 PNG (2.5
# gigapixels, a few hundred kB compressed) is refused from its header, before a pixel is decoded.
MAX_IMAGE_PIXELS = 50_000_000
# Decoded pictures are reduced (area averaging, by an integer factor) to at most this many pixels on the longer
# side: a digit ends up 20 px tall, and a 12-megapixel photo as float32 RGB would take 144 MB.
MAX_DECODED_SIDE = 1024
# Drawing limits: a canvas up to 2,000 px, and enough points for any drawing (a pointer reports ~60 a second).
MAX_CANVAS = 2000
MAX_STROKES = 200
MAX_POINTS = 20_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The rasteriser cuts segments into pieces of at most this many pixels (or half the pen width if longer). Measured
# on drawn digits with an 18 px pen: 8 px took 1.3 ms a drawing; 4 px (more overlapping windows) 2.7 ms, 30 px
# (larger empty corners) 2.6 ms.
PIECE_PX = 8.0
# The most values it computes at once (float32: 8 MB an array): one chunk for a drawing on the pad (~80,000), many
# for a huge pen on a 2,000 px canvas, whose windows would otherwise take gigabytes.
RASTER_CHUNK = 2**21
# The most values a drawing may cost the rasteriser (its pieces times their window): 0.2-2 s at the 15-45 ns a value
# measured here. A digit on the pad costs ~80,000; an 18 px pen may draw 250 widths of a 2,000 px canvas.
MAX_RASTER_VALUES = 50_000_000


@dataclass(frozen=True)
class Recipe:
    """How a picture becomes a model input.

    Attributes:
        kind: ``mnist`` or ``resize`` (see the module docstring).
        height, width, channels: the model's input size.
        low, high: the value range of the model's test set: background maps to ``low`` (``mnist``) and full
            intensity to ``high``.
        dark_background: the test images are light on dark (MNIST): a drawing stays ink on dark, a greyscale
            photo of dark ink on paper is inverted; otherwise a drawing is dark ink on light.
        centre: crop to the ink and centre it (``mnist`` only; False: a plain resize).
    """

    kind: str
    height: int
    width: int
    channels: int
    low: float
    high: float
    dark_background: bool = True
    centre: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The recipe as JSON-ready fields."""
        return asdict(self)


def choose_recipe(images: np.ndarray, meta: dict[str, Any] | None = None, centre: bool = True) -> Recipe:
    """The recipe for a model whose test set is ``images`` [N, H, W, C].

    ``meta["preprocessing"]`` (``"mnist"`` or ``"resize"``) decides when present; otherwise a 28 x 28 x 1 input
    whose test images have a dark background (their border at the bottom of the value range, as MNIST's and
    Fashion-MNIST's) gets the MNIST recipe and anything else a resize.

    Raises:
        InvalidInput: an unknown ``preprocessing`` in meta.json, or a test set without images.
    """
    if images.ndim != 4 or len(images) == 0:
        raise InvalidInput(f"the model's test set has shape {images.shape}: expected [N, H, W, C] images")
    _, height, width, channels = images.shape
    low, high = pixel_range(images) or (0.0, 1.0)
    if high <= low:
        low, high = 0.0, 1.0
    asked = (meta or {}).get("preprocessing")
    if asked is not None and asked not in RECIPES:
        raise InvalidInput(f"meta.json's preprocessing is {asked!r}: expected one of {', '.join(RECIPES)}")
    sample = images[:200]
    border = np.concatenate([sample[:, 0].ravel(), sample[:, -1].ravel(), sample[:, :, 0].ravel(),
                             sample[:, :, -1].ravel()])
    dark = float(np.median(border)) <= low + 0.25 * (high - low)
    if asked is None:
        asked = MNIST if (height, width, channels) == (MNIST_SIZE, MNIST_SIZE, 1) and dark else RESIZE
    return Recipe(asked, int(height), int(width), int(channels), low, high, dark, centre)


def parse_strokes(strokes: Any, width: Any, size: Any) -> tuple[list[np.ndarray], float, int]:
    """Check a drawing as sent by the drawing pad: ``strokes`` a list of polylines ``[[x, y], ...]`` in canvas
    pixels, ``width`` the pen width and ``size`` the side of the square canvas, both in pixels.

    Returns:
        ``(polylines, width, size)``: each polyline a float64 array [points, 2].

    Raises:
        InvalidInput: anything malformed, non-finite, out of bounds or over the limits, or no point at all (an empty
            canvas), with what is wrong.
    """
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not 8 <= size <= MAX_CANVAS:
        raise InvalidInput(f"'size' (the canvas side in pixels) must be a number from 8 to {MAX_CANVAS}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0.5 <= width <= size / 2:
        raise InvalidInput(f"'width' (the pen width in pixels) must be a number from 0.5 to {size / 2:g}")
    if not isinstance(strokes, list):
        raise InvalidInput("'strokes' must be a list of strokes, each a list of [x, y] points")
    if len(strokes) > MAX_STROKES:
        raise InvalidInput(f"the drawing has {len(strokes)} strokes: at most {MAX_STROKES} are taken")
    polylines, total = [], 0
    for number, stroke in enumerate(strokes, 1):
        if not isinstance(stroke, list) or not all(
            isinstance(point, list) and len(point) == 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in point)
            for point in stroke
        ):
            raise InvalidInput(f"stroke {number} must be a list of [x, y] points (numbers)")
        total += len(stroke)
        if total > MAX_POINTS:
            raise InvalidInput(f"the drawing has more than {MAX_POINTS} points")
        if not stroke:
            continue
        try:
            points = np.asarray(stroke, dtype=np.float64)
        except OverflowError:  # a JSON integer beyond a float's range (10**400): far outside any canvas
            points = np.array([np.inf])
        if not np.isfinite(points).all() or points.min() < -width or points.max() > size + width:
            raise InvalidInput(f"stroke {number} has a point outside the {size:g} x {size:g} canvas")
        polylines.append(points)
    if not polylines:
        raise InvalidInput("the canvas is empty: draw a digit first")
    cost = raster_values(polylines, float(width))
    if cost > MAX_RASTER_VALUES:
        raise InvalidInput(f"the drawing is too long for its pen: {cost:,} values to draw, at most "
                           f"{MAX_RASTER_VALUES:,} are taken (fewer or shorter strokes, or a thinner pen)")
    return polylines, float(width), int(round(size))


def _pieces(polylines: list[np.ndarray], width: float):
    """The segments of the drawing and how :func:`rasterise` cuts them: ``(starts, steps, parts, reach, window)``,
    each segment ``i`` from ``starts[i]`` by ``steps[i]`` in ``parts[i]`` pieces, each inking a square ``window``
    around it (a one-point stroke is one segment of length 0)."""
    reach = width / 2 + 0.5
    piece = max(PIECE_PX, width / 2)
    starts = np.concatenate([points if len(points) == 1 else points[:-1] for points in polylines])
    steps = np.concatenate([points if len(points) == 1 else points[1:] for points in polylines]) - starts
    parts = np.maximum(np.ceil(np.hypot(steps[:, 0], steps[:, 1]) / piece).astype(np.int64), 1)
    return starts, steps, parts, reach, math.ceil(piece + 2 * reach) + 1


def raster_values(polylines: list[np.ndarray], width: float) -> int:
    """How many values :func:`rasterise` computes for the drawing (its work and, per chunk, its memory), known
    before drawing it."""
    _, _, parts, _, window = _pieces(polylines, width)
    return int(parts.sum()) * window * window


def rasterise(polylines: list[np.ndarray], width: float, size: int) -> np.ndarray:
    """Draw polylines anti-aliased on a ``size`` x ``size`` canvas: float32 [size, size], ink 1, background 0.

    Each pixel's ink is ``clip(width / 2 + 0.5 - d, 0, 1)`` for its centre's distance ``d`` to the nearest segment:
    a one-pixel soft edge, round caps and joins, and a single point drawn as a dot. Only the pixels near a segment
    are computed, so a drawing costs its ink, not the canvas.

    Without a Python loop per segment: segments are cut into pieces of at most :data:`PIECE_PX` or half the pen
    width, whichever is longer (the nearest point of a segment is the nearest point of one of its pieces), so one
    square window of the same size around every piece holds all the pixels it inks; the distances of all windows
    are one array [pieces, window, window] (in chunks of at most :data:`RASTER_CHUNK` values, for huge pens and
    canvases), and each pixel keeps its largest ink (``np.maximum.at``). Distances are float32 relative to each
    window's corner: within 2e-6 of float64 for a pad's pen anywhere on the canvas, 4e-5 for a 1,000 px pen.
    """
    starts, step, parts, reach, window = _pieces(polylines, width)
    ends = np.cumsum(parts)  # pieces of segment i: ends[i] - parts[i] up to ends[i]
    spare = size * size  # where pixels outside the canvas are inked
    canvas = np.zeros(spare + 1, dtype=np.float32)
    centres = np.arange(window, dtype=np.float32) + 0.5
    chunk = max(1, RASTER_CHUNK // window**2)
    for first_piece in range(0, int(ends[-1]), chunk):
        pieces = np.arange(first_piece, min(first_piece + chunk, int(ends[-1])))
        segment = np.searchsorted(ends, pieces, side="right")
        fraction = ((pieces - ends[segment] + parts[segment]) / parts[segment])[:, None]
        begin = starts[segment] + fraction * step[segment]
        finish = begin + step[segment] / parts[segment][:, None]
        corner = np.floor(np.minimum(begin, finish) - reach).astype(np.int64)  # [pieces, (x, y)]
        x0, y0 = (begin - corner).astype(np.float32).T[:, :, None, None]
        dx, dy = (finish - begin).astype(np.float32).T[:, :, None, None]
        length2 = dx * dx + dy * dy
        inverse = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)  # a dot: t = 0
        ex, ey = centres[None, None, :] - x0, centres[None, :, None] - y0  # [pieces, 1, window], [pieces, window, 1]
        # Two [pieces, window, window] buffers, every step in place: fresh arrays of that size cost as much as the
        # arithmetic (page faults), and a scatter of int32 indices without a mask costs less than selecting first.
        t = np.multiply(ex, dx, out=np.empty((len(pieces), window, window), dtype=np.float32))
        t += ey * dy
        t *= inverse
        np.clip(t, 0.0, 1.0, out=t)  # the nearest point of the piece, as a fraction of it
        ink = np.multiply(t, dx, out=np.empty_like(t))
        np.subtract(ex, ink, out=ink)
        ink *= ink
        np.multiply(t, dy, out=t)
        np.subtract(ey, t, out=t)
        t *= t
        ink += t
        np.sqrt(ink, out=ink)
        np.subtract(np.float32(reach), ink, out=ink)
        np.clip(ink, 0.0, 1.0, out=ink)
        # Windows reach past the canvas's edges (points may lie up to a pen width out): those pixels go to a spare
        # last element of the canvas.
        rows, cols = corner[:, 1, None] + np.arange(window), corner[:, 0, None] + np.arange(window)
        rows = np.where((rows >= 0) & (rows < size), rows * size, spare).astype(np.int32)
        cols = np.where((cols >= 0) & (cols < size), cols, spare).astype(np.int32)
        index = np.add(rows[:, :, None], cols[:, None, :], dtype=np.int32)
        np.minimum(index, spare, out=index)
        np.maximum.at(canvas, index.ravel(), ink.ravel())
    return canvas[:spare].reshape(size, size)


def decode_image(data: bytes, max_bytes: int) -> np.ndarray:
    """An uploaded picture as float32 RGB [H, W, 3] in [0, 1] (the first frame of an animation, turned upright by
    its EXIF orientation, transparency composited onto white, reduced to at most :data:`MAX_DECODED_SIDE` px).

    Raises:
        TooLarge: more than ``max_bytes`` bytes (checked before decoding) or more than :data:`MAX_IMAGE_PIXELS`
            pixels (checked from the header, before the pixels are decoded).
        InvalidInput: empty, not a PNG/JPEG/GIF/BMP/WebP, truncated or corrupt.
    """
    if len(data) > max_bytes:
        raise TooLarge(f"the image ({format_bytes(len(data))}) is larger than the limit of {format_bytes(max_bytes)}")
    if not data:
        raise InvalidInput("the image file is empty")
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it; both are refusals here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                pixels = image.width * image.height
                if pixels > MAX_IMAGE_PIXELS:
                    raise TooLarge(f"the image has too many pixels ({image.width} x {image.height}): at most "
                                   f"{MAX_IMAGE_PIXELS:,} are taken")
                image.seek(0)
                image.load()
                image = ImageOps.exif_transpose(image)
                factor = math.ceil(max(image.size) / MAX_DECODED_SIDE)
                image = _on_white(image)
                if factor > 1:
                    image = image.reduce(factor)
                return np.asarray(image, dtype=np.float32) / 255.0
        except TooLarge:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise TooLarge(f"the image has too many pixels (Pillow's decompression-bomb limit; at most "
                           f"{MAX_IMAGE_PIXELS:,} are taken)") from None
        except Image.UnidentifiedImageError:
            raise InvalidInput(f"not an image Pillow can read as {', '.join(IMAGE_FORMATS)}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InvalidInput(f"the image cannot be decoded (truncated or corrupt): {exc}") from None


def _on_white(image):
    """``image`` as RGB, any transparency composited onto white (a digit drawn on a transparent background is dark
    ink on "paper")."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def encode_png(pixels: np.ndarray) -> bytes:
    """``pixels`` (float [H, W] or [H, W, 1|3] in [0, 1]) as an 8-bit greyscale or RGB PNG: the originals and
    previews.

    Written here rather than by Pillow, which tries five row filters per row: for a drawing's 280 px original
    Pillow took 1.3 ms (1.8 ms at the default level), this 0.4 ms, for the same 4.5 kB. Rows are unfiltered and
    compressed at zlib's fastest level: the pictures are a digit on a plain background and compress well anyway.
    """
    values = np.asarray(pixels, dtype=np.float32)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] != 3) or min(values.shape[:2]) < 1:
        raise InvalidInput(f"a PNG is drawn from [H, W], [H, W, 1] or [H, W, 3] pixels, got shape {values.shape}")
    height, width = values.shape[:2]
    rows = np.zeros((height, 1 + values[0].size), dtype=np.uint8)  # each row starts with its filter: 0, none
    rows[:, 1:] = np.round(np.clip(values, 0, 1) * 255).reshape(height, -1)
    colour = 0 if values.ndim == 2 else 2  # greyscale or RGB, 8 bits a sample
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + _png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def greyscale(pixels: np.ndarray) -> np.ndarray:
    """Luma of RGB [H, W, 3] (ITU-R 601, the weights Pillow uses) or a greyscale [H, W] / [H, W, 1] as [H, W]."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[:, :, 0]
    if pixels.ndim == 2:
        return pixels
    raise InvalidInput(f"a picture must be [H, W], [H, W, 1] or [H, W, 3], got shape {pixels.shape}")


def as_ink(pixels: np.ndarray) -> np.ndarray:
    """Greyscale ``pixels`` in [0, 1] as ink in [0, 1] on a background of 0: inverted when the background (the
    median of the border) is light, and stretched so the background is 0 and the darkest ink 1.

    Raises:
        InvalidInput: a blank picture (no contrast to the background).
    """
    grey = greyscale(pixels)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = background - grey if background > 0.5 else grey - background
    peak = float(ink.max())
    if not peak > 0.05:
        raise InvalidInput("the picture is blank: no ink (no stroke darker or lighter than its background)")
    return np.clip(ink / peak, 0.0, 1.0)


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """The [n_out, n_in] matrix of area averaging from ``n_in`` to ``n_out`` samples along one axis: output pixel i
    covers the input interval ``[i, i + 1) * n_in / n_out``, and each input pixel weighs by how much of it lies
    inside (rows sum to 1; works for shrinking and for growing)."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    lower, upper = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(upper, pixel + 1) - np.maximum(lower, pixel), 0.0, None)
    return (overlap / scale).astype(np.float32)


def resize_area(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``pixels`` [H, W] or [H, W, C] resized to ``height`` x ``width`` by area averaging (two matrix products).

    The products go through ``einsum``'s own loops, not BLAS: measured on a busy 2-core machine, a 20 x 216 by
    216 x 138 ``matmul`` took 32 ms when OpenBLAS woke its threads, ``einsum`` 0.15 ms.
    """
    rows, cols = area_weights(pixels.shape[0], height), area_weights(pixels.shape[1], width)
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 2:
        return np.einsum("iw,jw->ij", np.einsum("ih,hw->iw", rows, pixels), cols)
    return np.einsum("iwc,jw->ijc", np.einsum("ih,hwc->iwc", rows, pixels), cols)


def centre_of_mass(ink: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass in pixel-centre coordinates (pixel 0 spans [0, 1): centre 0)."""
    total = float(ink.sum())
    rows = np.arange(ink.shape[0], dtype=np.float64)
    cols = np.arange(ink.shape[1], dtype=np.float64)
    return float(ink.sum(axis=1) @ rows) / total, float(ink.sum(axis=0) @ cols) / total


def mnist_ink(ink: np.ndarray, centre: bool = True) -> np.ndarray:
    """MNIST's geometry on an ink image (float [H, W], background 0): float32 [28, 28] in [0, 1].

    With ``centre``: crop to the ink (pixels of at least :data:`INK_THRESHOLD`), scale the longer side to 20 px
    keeping the aspect ratio (area averaging), and place it in 28 x 28 so that the centre of mass lands on the
    field's centre (13.5, 13.5) to within half a pixel (whole-pixel shift, as MNIST did; a fractional shift would
    blur the digit). A digit whose mass sits far to one side is shifted only as far as its box stays inside.
    Without ``centre``: the whole picture, padded square, resized to 28 x 28.
    """
    if not centre:
        side = max(ink.shape)
        square = np.zeros((side, side), dtype=np.float32)
        top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
        square[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
        return np.clip(resize_area(square, MNIST_SIZE, MNIST_SIZE), 0.0, 1.0)
    inked = ink >= INK_THRESHOLD
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("the picture has no ink to centre")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = np.where(crop >= INK_THRESHOLD / 2, crop, 0.0)  # paper grain outside the strokes would pull the centre
    longer = max(crop.shape)
    height = max(1, round(crop.shape[0] * MNIST_BOX / longer))
    width = max(1, round(crop.shape[1] * MNIST_BOX / longer))
    box = np.clip(resize_area(crop.astype(np.float32), height, width), 0.0, 1.0)
    row, col = centre_of_mass(box)
    middle = (MNIST_SIZE - 1) / 2
    top = int(np.clip(math.floor(middle - row + 0.5), 0, MNIST_SIZE - height))
    left = int(np.clip(math.floor(middle - col + 0.5), 0, MNIST_SIZE - width))
    field = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    field[top : top + height, left : left + width] = box
    return field


def preprocess(pixels: np.ndarray, recipe: Recipe, ink: bool = False) -> np.ndarray:
    """A picture as the model's input: float32 [H, W, C] in the recipe's value range.

    Args:
        pixels: float [H, W] or [H, W, 1|3] in [0, 1], a decoded upload (paper and ink as photographed) or, with
            ``ink``, a rasterised drawing (ink 1 on background 0).
        recipe: from :func:`choose_recipe`.
        ink: ``pixels`` is already ink on a dark background (a drawing): no inversion or stretching.

    Raises:
        InvalidInput: a blank picture or one of an unusable shape.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 1:
        raise InvalidInput(f"a picture must be [H, W] or [H, W, C], got shape {pixels.shape}")
    span = recipe.high - recipe.low
    if recipe.kind == MNIST:
        drawn = greyscale(pixels) if ink else as_ink(pixels)
        if not float(drawn.max()) >= INK_THRESHOLD:
            raise InvalidInput("the canvas is empty: draw a digit first")
        field = mnist_ink(drawn, recipe.centre)
        return (recipe.low + span * field)[:, :, None].astype(np.float32)
    if ink and not recipe.dark_background:
        pixels = 1.0 - pixels  # a drawing's ink is dark on the light background these test images have
    elif not ink and recipe.channels == 1 and recipe.dark_background:
        pixels = as_ink(pixels)  # a photo of dark ink on paper, as the light-on-dark images the model knows
    if recipe.channels == 3:
        colour = np.repeat(greyscale(pixels)[:, :, None], 3, axis=2) if pixels.ndim == 2 or pixels.shape[2] == 1 \
            else pixels
        sized = resize_area(colour, recipe.height, recipe.width)
    elif recipe.channels == 1:
        sized = resize_area(greyscale(pixels), recipe.height, recipe.width)[:, :, None]
    else:
        raise InvalidInput(f"the model takes {recipe.channels} channels: only 1 (greyscale) or 3 (RGB) can be drawn")
    return (recipe.low + span * np.clip(sized, 0.0, 1.0)).astype(np.float32)


def preview(model_input: np.ndarray, recipe: Recipe) -> np.ndarray:
    """``model_input`` mapped back to [0, 1] for display: "what the model sees"."""
    span = recipe.high - recipe.low
    return np.clip((np.asarray(model_input, dtype=np.float32) - recipe.low) / span, 0.0, 1.0)


def check_array(values: Any, recipe: Recipe) -> np.ndarray:
    """A raw array sent as a model input, as float32 [H, W, C]: nested lists of the model's input shape ([H, W]
    accepted for one channel), finite, within the test set's value range (10 % leeway).

    Raises:
        InvalidInput: not numbers, the wrong shape, non-finite or out of range values.
    """
    expected = (recipe.height, recipe.width, recipe.channels)
    try:
        array = np.asarray(values, dtype=np.float32)
    except OverflowError:  # a JSON integer beyond a float's range (10**400)
        raise InvalidInput("'array' has values that are not finite numbers") from None
    except (TypeError, ValueError):
        raise InvalidInput(f"'array' must be nested lists of numbers of shape {list(expected)}") from None
    if array.ndim == 2 and recipe.channels == 1:
        array = array[:, :, None]
    if array.shape != expected:
        raise InvalidInput(f"'array' has shape {list(array.shape)}: the model takes {list(expected)}")
    if not np.isfinite(array).all():
        raise InvalidInput("'array' has values that are not finite numbers")
    leeway = 0.1 * (recipe.high - recipe.low)
    if array.min() < recipe.low - leeway or array.max() > recipe.high + leeway:
        raise InvalidInput(f"'array' has values outside the model's input range {recipe.low:g} to {recipe.high:g}")
    return array
