"""The store of drawn and uploaded images: content ids, atomic folders, a bound, nothing unsafe read back."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from app.core.errors import InvalidInput, NotFound
from app.core.user_images import UserImageStore, image_id, is_user_image


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28, 1), dtype=np.float32)


def test_an_image_comes_back_as_saved_under_its_content_id(tmp_path):
    store = UserImageStore(tmp_path / "images")
    array = pixels(1)
    reference = store.save(array, b"preview", b"original", {"model": "m", "source": "strokes"})
    assert is_user_image(reference) and reference == image_id(array.copy())
    again = store.get(reference)
    np.testing.assert_array_equal(again.model_input, array)
    assert again.meta["model"] == "m" and again.meta["id"] == reference
    assert store.png(reference) == b"preview" and store.png(reference, "original") == b"original"
    assert store.save(array, b"preview", b"original", {"model": "m"}) == reference and len(store) == 1
    assert image_id(pixels(2)) != reference
    assert not list((tmp_path / "images").glob(".tmp-*"))  # written under a temporary name, renamed in place


def test_the_store_keeps_the_newest_and_evicts_the_oldest(tmp_path):
    store = UserImageStore(tmp_path, max_images=3)
    ids = []
    for seed in range(5):
        ids.append(store.save(pixels(seed), b"p", b"o", {}))
        os.utime(tmp_path / ids[-1][2:], (time.time() - 100 + seed, time.time() - 100 + seed))
    store.save(pixels(2), b"p", b"o", {})  # seen again: now the newest
    store.save(pixels(9), b"p", b"o", {})
    assert len(store) == 3
    kept = {reference for reference in ids if (tmp_path / reference[2:]).is_dir()}
    assert kept == {ids[2], ids[4]}
    with pytest.raises(NotFound, match="newest 3"):
        store.get(ids[0])


def test_malformed_ids_and_unsafe_files_are_refused(tmp_path):
    store = UserImageStore(tmp_path)
    for bad in ("u:../../etc", "u:XYZ", "12", "u:" + "a" * 21):
        with pytest.raises(InvalidInput, match="not an image id"):
            store.get(bad)
    with pytest.raises(NotFound):
        store.get("u:" + "a" * 20)
    folder = tmp_path / ("b" * 20)
    folder.mkdir()
    np.save(folder / "input.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (folder / "meta.json").write_text("{}")
    with pytest.raises(NotFound, match="cannot be read"):  # an object array is never unpickled
        store.get("u:" + "b" * 20)
    with pytest.raises(InvalidInput):
        store.save(np.full((28, 28, 1), np.nan, np.float32), b"", b"", {})
    assert len(store) == 1  # only the planted folder
