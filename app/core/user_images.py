"""Drawn and uploaded images, kept on disk so that every worker (and a colleague opening a link) sees them.

Each image is a folder ``<root>/<hash>/`` named after a content hash of the preprocessed model input, holding:

- ``input.npy``: the model input [H, W, C] float32 (read back with ``allow_pickle=False``);
- ``original.png``: the drawing or upload as it was given, at most :data:`ORIGINAL_SIDE` px;
- ``meta.json``: the model it was made for, the recipe, the source (``strokes``, ``upload``, ``array``), when;
- ``preview.png``: what the model sees, drawn as the app draws test images (one channel: high values dark on
  white), made from ``input.npy`` and the recipe when first asked for, then kept (it is not on the path from a
  stroke to the view: the drawing pad loads it by URL).

A folder is written under a temporary name and renamed into place, so a reader never sees half an image; the same
image twice is the same id (the second save only marks it as recent, and encodes nothing). Files are not fsynced:
a drawing is cheap to redo, and after a power cut the newest images may be unreadable, which :meth:`get` reports
as not found; the rename still keeps a folder whole while the machine runs.

The store is bounded: once it holds more than its ``max_images`` (:data:`DEFAULT_MAX_IMAGES`), the oldest (by
modification time) are evicted down to the bound less a 20th of it (:data:`EVICTION_DIVISOR`), so that a full
store reads its images' ages once per few dozen additions rather than at every one (1,000 ``stat`` calls took
3.5 ms). Each process counts the images it adds since it last listed the folder, and lists it again when that
count passes the bound or after :data:`RECOUNT_EVERY` additions: several workers together overshoot the bound by
at most :data:`RECOUNT_EVERY` images each. These images are never part of a model's frozen test set nor of its
statistics: they live apart and are addressed as ``u:<hash>``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core import digits
from app.core.activations import ProvidedImage
from app.core.cache import LRUCache
from app.core.errors import InvalidInput, NotFound, Unavailable

if TYPE_CHECKING:
    from app.core.store import LoadedModel

logger = logging.getLogger(__name__)

PREFIX = "u:"
ID_PATTERN = re.compile(r"u:([0-9a-f]{20})")
DEFAULT_MAX_IMAGES = 1000
# The stored original is for display next to the preview; 280 px is the drawing pad's size.
ORIGINAL_SIDE = 280
# The largest model input stored: a 512 x 512 RGB float32 image is 3 MB; the store holds at most 1,000.
MAX_INPUT_BYTES = 4 * 2**20
TEMPORARY = ".tmp-"
# A full store is evicted down to its bound less the bound divided by this: a 20th (a bound under 20 is kept
# exactly).
EVICTION_DIVISOR = 20
# A process lists the folder again after this many additions of its own (the other workers' additions are unseen
# in between).
RECOUNT_EVERY = 64
# How many model versions' recipes a store keeps.
RECIPES_KEPT = 32


def names_user_image(value: Any) -> bool:
    """Whether ``value`` is meant as a user image (text starting ``u:``), well formed or not: such a value is never
    read as a test-image number."""
    return isinstance(value, str) and value.startswith(PREFIX)


def is_user_image(reference: str) -> bool:
    """True if ``reference`` looks like a user image id (``u:`` and 20 hex digits)."""
    return bool(ID_PATTERN.fullmatch(reference))


def image_id(model_input: np.ndarray) -> str:
    """The content id of a model input: ``u:`` and 20 hex digits of the SHA-256 of its shape, dtype and bytes."""
    array = np.ascontiguousarray(model_input)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return PREFIX + digest.hexdigest()[:20]


@dataclass(frozen=True)
class UserImage:
    """One stored image.

    Attributes:
        id: ``u:<hash>``.
        model_input: the preprocessed array [H, W, C] float32.
        meta: model, recipe, source, created (see the module docstring).
    """

    id: str
    model_input: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


class UserImageStore:
    """The images of one instance in ``root`` (``STATE_DIR/user_images``).

    Args:
        root: the folder (created on first save).
        max_images: how many are kept; the oldest are evicted beyond it.
    """

    def __init__(self, root: Path, max_images: int = DEFAULT_MAX_IMAGES) -> None:
        self.root = Path(root)
        self.max_images = max_images
        # Guards the count below: one store serves the threads of a worker.
        self._lock = threading.Lock()
        # One eviction at a time per process: a thread that finds one running leaves the work to it.
        self._evicting = threading.Lock()
        # Set by every addition that asks for an eviction: the evicting thread lists the folder again while it is
        # set, so an image renamed into place after a listing began is counted by a later one.
        self._eviction_asked = False
        self._known: int | None = None  # images at the last listing plus this process's additions since
        self._added_since_listing = 0
        # Recipes of recently drawn-for model versions: choosing one reads the whole test set's range (0.9 ms for
        # mnist-cnn's test set), the same for every drawing.
        self.recipes: LRUCache[digits.Recipe] = LRUCache(RECIPES_KEPT)

    def _folder(self, reference: str) -> Path:
        match = ID_PATTERN.fullmatch(reference)
        if match is None:
            raise InvalidInput(f"{reference[:40]!r} is not an image id: expected u: and 20 hex digits")
        return self.root / match.group(1)

    def save(self, model_input: np.ndarray, original: np.ndarray, meta: dict[str, Any]) -> str:
        """Store an image and return its id; the same ``model_input`` again returns the same id.

        Args:
            model_input: the preprocessed array [H, W, C].
            original: the picture as given, float [H, W] or [H, W, 1|3] in [0, 1], encoded as ``original.png``
                only when the image is new.
            meta: model, recipe (its ``low`` and ``high`` draw the preview), source.

        Raises:
            InvalidInput: not a finite float32 [H, W, C] array of at most :data:`MAX_INPUT_BYTES`.
            Unavailable: the folder cannot be written (disk full, permissions).
        """
        array = np.ascontiguousarray(model_input, dtype=np.float32)
        if array.ndim != 3 or array.nbytes > MAX_INPUT_BYTES or not np.isfinite(array).all():
            raise InvalidInput(f"a stored image must be a finite [H, W, C] array of at most {MAX_INPUT_BYTES} bytes")
        reference = image_id(array)
        final = self._folder(reference)
        try:
            try:
                os.utime(final)  # seen again: now among the newest
                return reference
            except FileNotFoundError:  # new, or evicted since it was last seen: stored below
                pass
            original_png = digits.encode_png(original)
            try:
                staging = Path(tempfile.mkdtemp(prefix=TEMPORARY, dir=self.root))
            except FileNotFoundError:  # the first image: the folder is made once, not checked at every save
                self.root.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=TEMPORARY, dir=self.root))
            try:
                np.save(staging / "input.npy", array, allow_pickle=False)
                (staging / "original.png").write_bytes(original_png)
                (staging / "meta.json").write_text(json.dumps({**meta, "id": reference, "created": time.time()}))
                os.rename(staging, final)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                # Another post renamed the same image into place first: it is stored. It may have been evicted
                # since (checking again would race that too), which is as if it had been evicted after this post.
                return reference
        except OSError as exc:
            raise Unavailable(f"cannot store the image in {self.root}: {exc.strerror or exc}") from None
        try:
            self._count_addition()
        except OSError as exc:  # the image is stored: a failed clean-up must not fail its post
            logger.warning("could not evict old images from %s: %s", self.root, exc)
        return reference

    def _count_addition(self) -> None:
        """Count one new image; list the folder (and evict) when the count passes the bound or is stale."""
        with self._lock:
            if (self._known is not None and self._added_since_listing < RECOUNT_EVERY
                    and self._known < self.max_images):
                self._known += 1
                self._added_since_listing += 1
                return
        self._evict()

    def _evict(self) -> None:
        """Count the images; beyond :attr:`max_images`, remove the oldest down to it less
        ``max_images // EVICTION_DIVISOR``. Also remove temporary folders over an hour old (a killed save's).

        Other processes (and, between listings, other threads) evict at the same time: a folder that vanishes
        between the listing and its ``stat`` was evicted by one of them and is simply left out.
        """
        self._eviction_asked = True
        while self._eviction_asked:
            if not self._evicting.acquire(blocking=False):
                return  # another thread of this process is evicting now; it lists again once it is done
            try:
                self._eviction_asked = False
                self._evict_once()
            finally:
                self._evicting.release()

    def _evict_once(self) -> None:
        """One listing of the folder and the removals it calls for (see :meth:`_evict`)."""
        now = time.time()
        with os.scandir(self.root) as listing:
            entries = [entry for entry in listing if entry.is_dir(follow_symlinks=False)]
        images = [entry for entry in entries if not entry.name.startswith(TEMPORARY)]
        for entry in entries:
            if entry.name.startswith(TEMPORARY) and now - _modified(entry) > 3600:
                shutil.rmtree(entry.path, ignore_errors=True)
        kept = len(images)
        if kept > self.max_images:  # otherwise no image's age needs reading
            ages = [(modified, entry.path) for entry in images if (modified := _modified(entry)) >= 0]
            kept = min(len(ages), self.max_images - self.max_images // EVICTION_DIVISOR)
            ages.sort()
            for _, path in ages[: len(ages) - kept]:
                shutil.rmtree(path, ignore_errors=True)
        with self._lock:
            self._known, self._added_since_listing = kept, 0

    def get(self, reference: str) -> UserImage:
        """The stored image ``reference``.

        Raises:
            InvalidInput: a malformed id.
            NotFound: no such image (never made on this instance, or evicted).
        """
        folder = self._folder(reference)
        try:
            model_input = np.load(folder / "input.npy", allow_pickle=False)
            meta = json.loads((folder / "meta.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"no drawn or uploaded image {reference} on this instance (the newest "
                           f"{self.max_images:,} are kept)") from None
        except (OSError, ValueError) as exc:
            raise NotFound(f"image {reference} cannot be read: {exc}") from None
        if model_input.dtype != np.float32 or model_input.ndim != 3:
            raise NotFound(f"image {reference} is not a stored model input")
        return UserImage(reference, model_input, meta)

    def png(self, reference: str, which: str = "preview") -> bytes:
        """The ``preview`` or ``original`` PNG of image ``reference`` (NotFound if there is none).

        The first request for a preview draws it from the stored input and keeps it beside it (written under a
        temporary name and renamed; a folder that cannot take it still answers).
        """
        if which not in ("preview", "original"):
            raise InvalidInput("which must be 'preview' or 'original'")
        path = self._folder(reference) / f"{which}.png"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if which == "original":
                raise NotFound(f"no drawn or uploaded image {reference} on this instance") from None
        except OSError:
            raise NotFound(f"no drawn or uploaded image {reference} on this instance") from None
        return self._drawn_preview(self.get(reference), path)

    def preview(self, image: UserImage) -> bytes:
        """The preview PNG of ``image``, an image just stored and still in memory: the kept one, else drawn from
        ``image`` itself, so that an image evicted by other posts right after it was stored still gets its answer.
        """
        path = self._folder(image.id) / "preview.png"
        try:
            return path.read_bytes()
        except OSError:
            return self._drawn_preview(image, path)

    @staticmethod
    def _drawn_preview(image: UserImage, path: Path) -> bytes:
        """Draw ``image``'s preview and keep it at ``path`` (temporary name, then renamed) if its folder is there."""
        data = digits.encode_png(_shown(image.model_input, image.meta.get("recipe")))
        staging = path.with_name(f"{TEMPORARY}{os.getpid()}-{threading.get_ident()}-{path.name}")
        try:
            staging.write_bytes(data)
            os.replace(staging, path)
        except OSError:
            staging.unlink(missing_ok=True)  # evicted meanwhile, or a read-only folder: the answer stands
        return data

    def __len__(self) -> int:
        try:
            with os.scandir(self.root) as entries:
                return sum(1 for entry in entries if entry.is_dir() and not entry.name.startswith(TEMPORARY))
        except (FileNotFoundError, NotADirectoryError):  # nothing stored yet
            return 0


def _modified(entry: os.DirEntry) -> float:
    """An entry's modification time; -1 for one removed since it was listed (evicted by another process)."""
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return -1.0


def _shown(model_input: np.ndarray, recipe: Any) -> np.ndarray:
    """What the model sees, in [0, 1], as the app draws test images (one channel: high values dark on white):
    ``recipe`` (a stored recipe's fields) maps its ``low`` to ``high`` onto [0, 1]; without a usable one, the
    values are taken as they are."""
    try:
        low, high = float(recipe["low"]), float(recipe["high"])
    except (KeyError, TypeError, ValueError):
        low, high = 0.0, 1.0
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        low, high = 0.0, 1.0
    shown = np.clip((model_input - low) / (high - low), 0.0, 1.0)
    return 1.0 - shown if shown.shape[-1] == 1 else shown


def _recipe(images: UserImageStore, loaded: LoadedModel, centre: bool) -> digits.Recipe:
    if loaded.key is None:  # a test set that is no stored model's (a training run's): nothing to key it by
        return digits.choose_recipe(loaded.images, loaded.meta, centre)
    # The version covers the test set; meta.json's choice is keyed too (its repr: any JSON value is hashable so).
    key = (loaded.key, centre, repr(loaded.meta.get("preprocessing")))
    return images.recipes.get_or_compute(key, lambda: digits.choose_recipe(loaded.images, loaded.meta, centre))


def _shrunk(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` reduced (area averaging) so the longer side is at most :data:`ORIGINAL_SIDE`."""
    factor = max(pixels.shape[:2]) / ORIGINAL_SIDE
    if factor <= 1:
        return pixels
    return digits.resize_area(pixels, max(1, round(pixels.shape[0] / factor)), max(1, round(pixels.shape[1] / factor)))


def _save(images: UserImageStore, loaded: LoadedModel, recipe: digits.Recipe, model_input: np.ndarray,
          original: np.ndarray, source: str) -> UserImage:
    meta = {"model": loaded.name, "version": loaded.version, "recipe": recipe.as_dict(), "source": source,
            "shape": list(model_input.shape)}
    reference = images.save(model_input, _shrunk(original), meta)
    return UserImage(reference, model_input, {**meta, "id": reference})


def add_drawing(images: UserImageStore, loaded: LoadedModel, strokes: Any, width: Any, size: Any,
                centre: bool = True) -> UserImage:
    """Rasterise a drawing, preprocess it for ``loaded`` and store it.

    Args:
        strokes, width, size: as the drawing pad sends them (see :func:`app.core.digits.parse_strokes`).
        centre: MNIST's crop and centring (False: a plain resize, to see why it matters).

    Raises:
        InvalidInput: a malformed or empty drawing (nothing is stored).
    """
    polylines, pen, side = digits.parse_strokes(strokes, width, size)
    canvas = digits.rasterise(polylines, pen, side)
    recipe = _recipe(images, loaded, centre)
    model_input = digits.preprocess(canvas, recipe, ink=True)
    return _save(images, loaded, recipe, model_input, 1.0 - canvas, "strokes")


def add_upload(images: UserImageStore, loaded: LoadedModel, data: bytes, max_bytes: int,
               centre: bool = True) -> UserImage:
    """Decode an uploaded picture, preprocess it for ``loaded`` and store it.

    Raises:
        TooLarge, InvalidInput: see :func:`app.core.digits.decode_image` (nothing is stored).
    """
    pixels = digits.decode_image(data, max_bytes)
    recipe = _recipe(images, loaded, centre)
    return _save(images, loaded, recipe, digits.preprocess(pixels, recipe), pixels, "upload")


def add_array(images: UserImageStore, loaded: LoadedModel, values: Any) -> UserImage:
    """Store a raw model input (nested lists of ``loaded``'s input shape, in its test set's range) as it is.

    Raises:
        InvalidInput: see :func:`app.core.digits.check_array` (nothing is stored).
    """
    recipe = _recipe(images, loaded, True)
    model_input = digits.check_array(values, recipe)
    shown = digits.preview(model_input, recipe)
    return _save(images, loaded, recipe, model_input, shown if recipe.channels == 3 else 1.0 - shown, "array")


def provided_image(images: UserImageStore, loaded: LoadedModel, reference: str) -> ProvidedImage:
    """Stored image ``reference`` as an input of ``loaded``'s engine.

    An image made for this model is used as stored. One made for another model is preprocessed again from its
    original with this model's recipe (its own input size and value range; the same centring choice), so a
    digit drawn with one model can be looked at with another.

    Raises:
        InvalidInput: a malformed id; NotFound: no such image.
    """
    stored = images.get(reference)
    if stored.meta.get("model") == loaded.name and stored.model_input.shape == loaded.images.shape[1:]:
        return ProvidedImage(reference, stored.model_input)
    pixels = digits.decode_image(images.png(reference, "original"), MAX_INPUT_BYTES)
    centre = bool(stored.meta.get("recipe", {}).get("centre", True))
    return ProvidedImage(reference, digits.preprocess(pixels, _recipe(images, loaded, centre)))
