"""Thumbnails of test images: PNG round trip and the top-images gallery's links."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from app.ui import thumbnails as af


def test_image_png_round_trips_the_pixels():
    image = np.zeros((4, 3, 1), dtype=np.float32)
    image[1, 2, 0] = 1.0
    image[3, 0, 0] = 0.5
    uri = af.image_png(image)
    assert uri.startswith("data:image/png;base64,")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert pixels.shape == (4, 3)
    # black ink on white, as the greys colormap draws the same image in every figure
    ink = 255 - pixels.astype(int)
    assert ink[1, 2] == 255 and ink[3, 0] == 127 and ink.sum() == 255 + 127


def test_top_images_gallery_links_every_image_with_its_value():
    images = np.zeros((5, 2, 2, 1), dtype=np.float32)
    labels = np.array([0, 1, 1, 0, 1])
    predicted = np.array([0, 1, 0, 0, 1])
    gallery = af.top_images_gallery(images, [2, 4], [9.5, 3.25], labels, predicted, ["a", "b"],
                                    lambda index: f"/?image={index}")
    items = gallery.children
    assert [item.children.href for item in items] == ["/?image=2", "/?image=4"]
    first_caption = items[0].children.children[1].children
    assert "9.5" in str(first_caption) and "b→a" in str(first_caption)  # image 2: a "b" predicted as "a"


def caption_lines(parts: list) -> list[str]:
    """A caption as a reader sees it: one string per line (the ``<br>``s split it)."""
    lines = [""]
    for part in parts:
        if part.children is None:
            lines.append("")
        else:
            lines[-1] += str(part.children)
    return lines


def test_a_caption_shows_the_confidence_or_the_number_the_list_is_ordered_by():
    names = [str(n) for n in range(10)]
    assert caption_lines(af.image_caption(663, 4, 4, 0.5673, names)) == ["#663", "4→4 57%"]
    by_p9 = af.image_caption(663, 4, 4, 0.5673, names, af.probability_label("9", 0.4316))
    assert caption_lines(by_p9) == ["#663", "4→4", "P(9) 0.43"]
    wrong = af.image_caption(227, 4, 6, 0.508, names, af.probability_label("9", 0.0406))
    assert caption_lines(wrong) == ["#227", "4→6", "P(9) 0.04"] and "text-danger" in wrong[3].className
    assert af.probability_label("Shirt", 0.9) == "P(Shirt) 0.90"
    by_distance = af.image_caption(663, 4, 4, 0.5673, names, af.distance_label("9", 8.14159))
    assert caption_lines(by_distance) == ["#663", "4→4", "d(9) 8.14"]


def test_probabilities_read_as_what_they_are_small_ones_never_as_zero():
    shown = {p: af.probability_text(p) for p in (1.0, 0.4316, 0.0406, 0.01, 0.0042, 0.00251, 0.001, 0.00049, 0.0)}
    assert shown == {1.0: "1.00", 0.4316: "0.43", 0.0406: "0.04", 0.01: "0.01", 0.0042: "0.004", 0.00251: "0.003",
                     0.001: "0.001", 0.00049: "0.000", 0.0: "0.000"}
    assert af.probability_text(float("nan")) == "nan"
