"""Which image a view shows, read once: a test image by its number, or a drawn or uploaded image by its id
``u:<id>``.

Every face hands the raw value it got (a URL parameter, a callback's input, an API query) to :func:`image_ref`
and gets an :class:`ImageRef` carrying what a view needs of the image: the engine's subject, the pixels, the true
class (none for the user's own), the name titles use and the value a link writes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.activations import ProvidedImage
from app.core.parsing import parse_int
from app.core.store import LoadedModel
from app.core.user_images import UserImageStore, names_user_image, provided_image

# The longest text read as a user image's id: ``u:`` and 20 hex digits, with room for the error message to quote.
MAX_REFERENCE_CHARS = 80


@dataclass(frozen=True, eq=False)
class ImageRef:
    """One image of one model, as every view takes it.

    Attributes:
        subject: what the activation engine takes: a test-image index, or the user's image.
        pixels: the model input [H, W, C].
        label: the true class of a test image; None for the user's own image.
    """

    subject: int | ProvidedImage
    pixels: np.ndarray
    label: int | None

    @property
    def own(self) -> bool:
        """Whether it is a drawn or uploaded image (no true class)."""
        return isinstance(self.subject, ProvidedImage)

    @property
    def key(self) -> int | str:
        """How a link or an API answer names it: the test-image number or ``u:<id>``."""
        return self.subject.key if isinstance(self.subject, ProvidedImage) else self.subject

    @property
    def name(self) -> str:
        """How a title names it: ``image 12`` or ``your image u:…``."""
        return f"your image {self.key}" if self.own else f"image {self.key}"


def image_ref(loaded: LoadedModel, raw: Any, user_images: UserImageStore, field: str = "the test image") -> ImageRef:
    """The image ``raw`` names for ``loaded``: ``u:<id>`` for a stored user image, else a test-image number (an
    int, an integral float as number inputs send, or ASCII digits).

    Raises:
        InvalidInput: a malformed number or id (the message names ``field``).
        NotFound: no such user image, or a number outside the test set.
    """
    if names_user_image(raw):
        return of_subject(loaded, provided_image(user_images, loaded, raw[:MAX_REFERENCE_CHARS]))
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e18:
        raw = int(raw)
    return of_subject(loaded, loaded.engine.check_image(parse_int(raw, field)))


def of_subject(loaded: LoadedModel, subject: int | ProvidedImage) -> ImageRef:
    """The :class:`ImageRef` of an engine subject already checked (a test-image index in range, or a user's
    image)."""
    if isinstance(subject, ProvidedImage):
        return ImageRef(subject, subject.pixels, None)
    return ImageRef(subject, loaded.images[subject], int(loaded.labels[subject]))
