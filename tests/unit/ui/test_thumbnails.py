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
