"""The store of drawn and uploaded images: content ids, atomic folders, a bound, nothing unsafe read back."""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app.core import user_images
from app.core.errors import InvalidInput, NotFound
from app.core.user_images import UserImageStore, image_id, is_user_image

ORIGINAL = np.linspace(0, 1, 12 * 10, dtype=np.float32).reshape(12, 10)


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28, 1), dtype=np.float32)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float64) / 255


def test_an_image_comes_back_as_saved_under_its_content_id(tmp_path):
    store = UserImageStore(tmp_path / "images")
    array = pixels(1)
    reference = store.save(array, ORIGINAL, {"model": "m", "source": "strokes"})
    assert is_user_image(reference) and reference == image_id(array.copy())
    again = store.get(reference)
    np.testing.assert_array_equal(again.model_input, array)
    assert again.meta["model"] == "m" and again.meta["id"] == reference
    np.testing.assert_allclose(decoded(store.png(reference, "original")), ORIGINAL, atol=0.5 / 255 + 1e-6)
    folder = tmp_path / "images" / reference[2:]
    assert store.save(array, ORIGINAL, {"model": "m"}) == reference and len(store) == 1
    assert image_id(pixels(2)) != reference
    assert not list((tmp_path / "images").glob(".tmp-*"))  # written under a temporary name, renamed in place
    assert sorted(path.name for path in folder.iterdir()) == ["input.npy", "meta.json", "original.png"]


def test_the_preview_is_drawn_from_the_input_and_the_recipe_when_first_asked_for_then_kept(tmp_path):
    store = UserImageStore(tmp_path)
    array = pixels(3) * 2 - 0.5  # a model input in [-0.5, 1.5]
    reference = store.save(array, ORIGINAL, {"recipe": {"low": -0.5, "high": 1.5}})
    preview = store.png(reference)
    # what the model sees, mapped back to [0, 1] and drawn dark on white, as the app draws test images
    np.testing.assert_allclose(decoded(preview), 1 - (array[:, :, 0] + 0.5) / 2, atol=0.5 / 255 + 1e-6)
    assert (tmp_path / reference[2:] / "preview.png").read_bytes() == preview == store.png(reference)
    assert not list((tmp_path / reference[2:]).glob(".tmp-*"))
    bare = store.save(pixels(4), ORIGINAL, {"recipe": "not a recipe"})  # a planted meta: the values as they are
    np.testing.assert_allclose(decoded(store.png(bare)), 1 - pixels(4)[:, :, 0], atol=0.5 / 255 + 1e-6)
    with pytest.raises(NotFound):
        store.png("u:" + "c" * 20)


def test_the_store_keeps_the_newest_and_evicts_the_oldest(tmp_path):
    store = UserImageStore(tmp_path, max_images=3)
    ids = []
    for seed in range(5):
        ids.append(store.save(pixels(seed), ORIGINAL, {}))
        os.utime(tmp_path / ids[-1][2:], (time.time() - 100 + seed, time.time() - 100 + seed))
    store.save(pixels(2), ORIGINAL, {})  # seen again: now the newest
    store.save(pixels(9), ORIGINAL, {})
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
        store.save(np.full((28, 28, 1), np.nan, np.float32), ORIGINAL, {})
    assert len(store) == 1  # only the planted folder


def test_a_full_store_is_evicted_a_20th_below_its_bound_and_lists_its_folder_only_then(tmp_path):
    store = UserImageStore(tmp_path, max_images=40)
    ids = []
    for seed in range(41):
        ids.append(store.save(pixels(seed), ORIGINAL, {}))
        os.utime(tmp_path / ids[-1][2:], (time.time() - 100 + seed, time.time() - 100 + seed))
    assert len(store) == 38  # 40 less a 20th: the oldest three went
    assert {path.name for path in tmp_path.iterdir()} == {reference[2:] for reference in ids[3:]}
    for seed in range(41, 43):
        store.save(pixels(seed), ORIGINAL, {})
    assert len(store) == 40  # counted, not listed: nothing evicted at the bound
    store.save(pixels(43), ORIGINAL, {})
    assert len(store) == 38


def test_workers_sharing_the_folder_overshoot_the_bound_by_at_most_their_recount_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(user_images, "RECOUNT_EVERY", 4)
    first, second = UserImageStore(tmp_path, max_images=10), UserImageStore(tmp_path, max_images=10)
    most = 0
    for seed in range(60):
        (first if seed % 3 else second).save(pixels(seed), ORIGINAL, {})
        most = max(most, len(first))
    assert 10 < most <= 10 + 2 * 4  # each worker saw the other's images within 4 of its own additions
    for seed in range(100, 105):
        first.save(pixels(seed), ORIGINAL, {})
    assert len(first) <= 10


def test_an_image_stored_while_another_thread_evicts_is_counted_by_a_listing_after_it(tmp_path, monkeypatch):
    """The eviction running when an image lands listed the folder before it: it lists again before it stops."""
    store = UserImageStore(tmp_path, max_images=2)
    for seed in range(2):
        store.save(pixels(seed), ORIGINAL, {})
    listing, go_on = threading.Event(), threading.Event()
    evict_once = store._evict_once

    def slow_first_listing() -> None:
        evict_once()
        if not listing.is_set():
            listing.set()
            go_on.wait(10)

    monkeypatch.setattr(store, "_evict_once", slow_first_listing)
    evicting = threading.Thread(target=store.save, args=(pixels(2), ORIGINAL, {}))
    evicting.start()
    assert listing.wait(10)
    store.save(pixels(3), ORIGINAL, {})  # finds the eviction running and leaves the work to it
    go_on.set()
    evicting.join(10)
    assert len(store) == 2


def test_posters_racing_evictions_at_a_small_bound_all_get_their_image_stored(tmp_path):
    """Real threads: 4 posters on two stores sharing the folder (two workers), at a bound of 3, so nearly every
    post evicts while others evict, list or write; a reader opens whatever was stored meanwhile."""
    stores = [UserImageStore(tmp_path, max_images=3), UserImageStore(tmp_path, max_images=3)]
    failures, stored = [], []
    start = threading.Barrier(5)

    def post(number: int) -> None:
        store = stores[number % 2]
        start.wait()
        for seed in range(number * 1000, number * 1000 + 60):
            array = pixels(seed % (number * 1000 + 40))  # the last 20 are the same 20 images for every poster
            try:
                reference = store.save(array, ORIGINAL, {"model": "m"})
            except Exception as exc:  # noqa: BLE001 - every failure is collected and shown
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if reference != image_id(array):
                failures.append(f"{reference} is not the content id of image {seed}")
            stored.append(reference)

    def read() -> None:
        start.wait()
        while any(thread.is_alive() for thread in posters):
            for reference in stored[-8:]:
                try:
                    np.testing.assert_array_equal(stores[0].get(reference).model_input.shape, (28, 28, 1))
                except NotFound:
                    pass  # evicted: the answer a viewer gets for an image past the bound
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"reading: {type(exc).__name__}: {exc}")

    posters = [threading.Thread(target=post, args=(number,)) for number in range(1, 5)]
    reader = threading.Thread(target=read)
    for thread in [*posters, reader]:
        thread.start()
    for thread in [*posters, reader]:
        thread.join(timeout=120)
    assert not failures, failures[:5]
    assert len(stored) == 4 * 60
    for store in stores:
        store.save(pixels(99_999), ORIGINAL, {})  # a quiet addition: each store lists and evicts down to its bound
    assert len(stores[0]) <= 3 and not list(tmp_path.glob(".tmp-*"))
