"""Test images as small pictures: PNG data URIs, thumbnails with captions, and the top-images gallery of a unit."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from dash import html
from PIL import Image

THUMBNAIL_PX = 56
THUMBNAIL_STYLE = {"width": f"{THUMBNAIL_PX}px", "height": f"{THUMBNAIL_PX}px", "imageRendering": "pixelated",
                   "border": "1px solid #ccc"}


def image_png(image: np.ndarray) -> str:
    """A test image [H, W, C] in [0, 1] (or 0-255) as a PNG data URI for an ``<img>``.

    A one-channel image is drawn as every figure draws it (the greys colormap): high values dark on a white
    ground, so a digit is black ink on white paper in thumbnails and charts alike. Colour images keep their colours.
    """
    values = np.asarray(image, dtype=np.float32)
    if values.max() <= 1.0:
        values = values * 255
    pixels = np.clip(values, 0, 255).astype(np.uint8)
    pil = Image.fromarray(255 - pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def thumbnail(image: np.ndarray, caption: Sequence, href: str | None = None, title: str = "", wrong: bool = False):
    """One thumbnail with a caption under it; a link when ``href`` is given (e.g. to the explorer)."""
    style = dict(THUMBNAIL_STYLE, borderColor="#d62728" if wrong else "#ccc")
    picture = html.Img(src=image_png(image), style=style, title=title)
    body = [picture, html.Div(caption, className="small text-center", style={"lineHeight": "1.1"})]
    inner = html.A(body, href=href, className="text-decoration-none text-reset") if href else html.Div(body)
    return html.Div(inner, className="d-inline-block m-1 align-top", style={"width": f"{THUMBNAIL_PX + 10}px"})


def probability_text(probability: float) -> str:
    """A class probability as a caption shows it: two decimals (``0.43``), three below 0.01 (``0.004``) so that a
    small probability does not read as 0.00."""
    return f"{probability:.2f}" if probability >= 0.01 else f"{probability:.3f}"


def probability_label(class_name: str, probability: float) -> str:
    """``P(9) 0.43``: a class's probability as a caption of a list ordered by it."""
    return f"P({class_name}) {probability_text(probability)}"


def distance_label(class_name: str, distance: float) -> str:
    """``d(9) 8.1``: an image's distance to a class's mean output as a caption of a list ordered by it."""
    return f"d({class_name}) {distance:.3g}"


def image_caption(index: int, label: int, predicted: int, confidence: float, class_names: Sequence[str],
                  ordered_by: str | None = None) -> list:
    """``#12 · 4→9 · 87%``: the image number, true class, prediction (red when wrong) and confidence.

    With ``ordered_by`` (e.g. ``P(9) 0.43``, or ``d(9) 8.1``), ``#12 · 4→4 · P(9) 0.43``: the number a list is
    ordered by instead of the confidence (a 4 that is "closest to 9" shows how 9-like it is, not how sure the
    model is that it is a 4).
    """
    wrong = label != predicted
    verdict = [html.Span(f"{class_names[label]}→"),
               html.Span(class_names[predicted], className="text-danger fw-bold" if wrong else "")]
    if ordered_by is None:
        return [html.Span(f"#{index}"), html.Br(), *verdict, html.Span(f" {confidence:.0%}")]
    # smaller than the rest of the caption: "P(9) 0.004" then fits the 64 px of a finder thumbnail on one line
    return [html.Span(f"#{index}"), html.Br(), *verdict, html.Br(), html.Span(ordered_by, style={"fontSize": "0.8em"})]


def top_images_gallery(
    images: np.ndarray,
    indices: Sequence[int],
    values: Sequence[float],
    labels: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    href_for,
) -> html.Div:
    """Thumbnails of the top images of a unit, each with its value, class and a link (``href_for(index)``)."""
    items = []
    for rank, (index, value) in enumerate(zip(indices, values, strict=True), start=1):
        index = int(index)
        caption = [html.Span(f"{rank}. #{index}"), html.Br(), html.B(f"{value:.3g}"), html.Br(),
                   html.Span(f"{class_names[labels[index]]}→{class_names[predicted[index]]}")]
        items.append(thumbnail(images[index], caption, href_for(index), f"image {index}: {value:.4g}",
                               wrong=bool(labels[index] != predicted[index])))
    return html.Div(items)
