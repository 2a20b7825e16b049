"""The model store: names, listing with broken models and reasons, legacy .h5, safe loading, atomic saves."""

import os
import zipfile

import keras
import numpy as np
import pytest

from app.core.model_files import BrokenModel, InvalidName, validate_name
from app.core.store import ModelExists, ModelNotFound, ModelStore, next_free_name
from tests.conftest import build_tiny_model, tiny_test_set


@pytest.mark.parametrize("name", ["mnist-cnn", "a", "My_model.v2", "x" * 64])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "a..b", "x" * 65, "name with space", "ä", None,
                                  "nl\n", "a\r", "\nb"])
def test_invalid_names(name):
    with pytest.raises(InvalidName):
        validate_name(name)


def test_listing_keeps_good_models_and_explains_broken_ones(tiny_store):
    store = ModelStore(tiny_store)
    entries = {entry.name: entry for entry in store.entries()}
    assert set(entries) == {"tiny", "legacy-h5", "corrupt", "no-test-set", "empty"}
    assert entries["tiny"].ok and entries["legacy-h5"].ok
    assert "cannot load model.keras" in entries["corrupt"].reason
    assert "no test set" in entries["no-test-set"].reason
    assert "no model file" in entries["empty"].reason
    with pytest.raises(BrokenModel, match="no test set"):
        store.get("no-test-set")
    with pytest.raises(ModelNotFound):
        store.get("absent")
    with pytest.raises(InvalidName):
        store.get("../tiny")


def test_blog_style_h5_with_default_names_loads(tiny_store):
    loaded = ModelStore(tiny_store).get("legacy-h5")
    names = [info.name for info in loaded.engine.layers]
    assert any(name.startswith("dense") for name in names)
    assert loaded.images.shape == (24, 6, 6, 1) and loaded.class_names == ["0", "1", "2"]


def test_blog_npy_test_files_with_one_hot_labels(tmp_path):
    keras.backend.clear_session()
    folder = tmp_path / "blog"
    folder.mkdir()
    build_tiny_model().save(folder / "cnn.h5")
    images, labels = tiny_test_set()
    np.save(folder / "test_imgs.npy", images)
    np.save(folder / "test_labels.npy", np.eye(3)[labels])
    loaded = ModelStore(tmp_path).get("blog")
    np.testing.assert_array_equal(loaded.labels, labels)


def test_pickled_test_set_is_refused(tmp_path):
    keras.backend.clear_session()
    folder = tmp_path / "pickled"
    folder.mkdir()
    build_tiny_model().save(folder / "model.keras")
    np.savez(folder / "test_set.npz", images=np.array([object()], dtype=object), labels=np.array([0]))
    with pytest.raises(BrokenModel, match="needs pickle"):
        ModelStore(tmp_path).get("pickled")


def test_mismatched_input_shape_is_broken(tmp_path):
    keras.backend.clear_session()
    folder = tmp_path / "mismatch"
    folder.mkdir()
    build_tiny_model().save(folder / "model.keras")
    np.savez(folder / "test_set.npz", images=np.zeros((3, 8, 8, 1)), labels=np.zeros(3, int))
    with pytest.raises(BrokenModel, match="does not fit test images"):
        ModelStore(tmp_path).get("mismatch")


def test_new_version_when_files_change(tiny_store):
    store = ModelStore(tiny_store)
    first = store.get("tiny")
    assert store.get("tiny") is first
    test_set = tiny_store / "tiny" / "test_set.npz"
    images, labels = tiny_test_set(30)
    np.savez(test_set, images=images, labels=labels)
    os.utime(test_set, ns=(1, 1))
    second = store.get("tiny")
    assert second.version != first.version and second.engine.n_images == 30


def test_save_is_atomic_and_refuses_overwrite(tmp_path, tiny_model):
    store = ModelStore(tmp_path)
    images, labels = tiny_test_set()
    store.save("new-model", tiny_model, images, labels, {"metrics": {"test_accuracy": np.float32(0.5)}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new-model"]
    assert store.get("new-model").meta["metrics"]["test_accuracy"] == 0.5
    with pytest.raises(ModelExists):
        store.save("new-model", tiny_model, images, labels, {})
    store.save("new-model", tiny_model, images[:5], labels[:5], {}, overwrite=True)
    assert store.get("new-model").engine.n_images == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new-model"]


def test_failed_save_leaves_nothing(tmp_path, tiny_model):
    store = ModelStore(tmp_path)
    images, labels = tiny_test_set()
    with pytest.raises(TypeError):
        store.save("half", tiny_model, images, labels, {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_listing_more_models_than_the_cache_opens_each_version_once(tiny_store, monkeypatch):
    """With 5 folders and room for 1 opened model, a second listing must not reopen any of them."""
    import app.core.store as store_module

    opened = []
    real_read = store_module.read_model_files
    monkeypatch.setattr(store_module, "read_model_files", lambda folder, *limits: opened.append(folder.name)
                        or real_read(folder, *limits))
    store = ModelStore(tiny_store, cache_size=1)
    first = store.entries()
    assert sorted(opened) == sorted(entry.name for entry in first)
    second = store.entries()
    assert len(opened) == len(first) and second == first
    images, labels = tiny_test_set(30)
    np.savez(tiny_store / "tiny" / "test_set.npz", images=images, labels=labels)
    os.utime(tiny_store / "tiny" / "test_set.npz", ns=(2, 2))
    store.entries()
    assert opened[len(first):] == ["tiny"]  # only the changed model is opened again


def test_next_free_name():
    assert next_free_name("my-cnn", set()) == "my-cnn"
    assert next_free_name("my-cnn", {"my-cnn", "my-cnn-2"}) == "my-cnn-3"


def test_an_npz_bomb_is_listed_as_broken_without_being_read(tiny_store):
    """A few kB on disk that declare hundreds of MB: refused from the headers, its data never loaded."""
    import tracemalloc

    folder = tiny_store / "bomb"
    folder.mkdir()
    build_tiny_model().save(folder / "model.keras")
    np.savez_compressed(folder / "test_set.npz", images=np.zeros((40_000, 28, 28, 1), np.float32),
                        labels=np.zeros(40_000, np.int64))
    assert (folder / "test_set.npz").stat().st_size < 2_000_000
    tracemalloc.start()
    entries = {entry.name: entry for entry in ModelStore(tiny_store, test_set_max_bytes=50_000_000).entries()}
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not entries["bomb"].ok and "limit is 50.0 MB" in entries["bomb"].reason
    assert entries["tiny"].ok and peak < 20_000_000


def test_meta_json_that_is_deep_huge_or_linked_out_is_ignored(tiny_store, tmp_path):
    folder = tiny_store / "tiny"
    (folder / "meta.json").write_text("[" * 200_000 + "]" * 200_000)
    assert ModelStore(tiny_store).get("tiny").meta == {}  # no RecursionError, the model still works
    secret = tmp_path / "secret.json"
    secret.write_text('{"dataset": "private", "metrics": {"test_accuracy": 1}}')
    (folder / "meta.json").unlink()
    (folder / "meta.json").symlink_to(secret)
    assert ModelStore(tiny_store).get("tiny").meta == {}
    (folder / "meta.json").unlink()
    (folder / "meta.json").write_text('{"metrics": [1, 2], "class_names": 7, "dataset": "d", "extra": {}}')
    os.utime(folder / "model.keras", ns=(5, 5))  # a new version, so the store reads the file again
    assert ModelStore(tiny_store).get("tiny").meta == {"dataset": "d"}  # wrong types dropped


def test_folders_linked_out_of_the_store_or_badly_named_are_listed_as_broken(tiny_store, tmp_path):
    outside = tmp_path / "elsewhere"
    (tiny_store / "tiny").rename(outside)
    (tiny_store / "linked").symlink_to(outside)
    (tiny_store / "name with space").mkdir()
    store = ModelStore(tiny_store)
    entries = {entry.name: entry for entry in store.entries()}
    assert not entries["linked"].ok and "outside" in entries["linked"].reason
    assert not entries["name with space"].ok and "invalid model name" in entries["name with space"].reason
    with pytest.raises(BrokenModel, match="outside"):
        store.get("linked")
    images, labels = tiny_test_set()
    (tiny_store / "legacy-h5" / "test_set.npz").unlink()
    np.savez(tmp_path / "other.npz", images=images, labels=labels)
    (tiny_store / "legacy-h5" / "test_set.npz").symlink_to(tmp_path / "other.npz")
    with pytest.raises(BrokenModel, match="outside"):
        store.get("legacy-h5")


def test_stale_temporary_folders_are_removed_but_not_a_save_in_progress(tiny_store):
    stale, fresh = tiny_store / ".tmp-old-1234", tiny_store / ".tmp-new-5678"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "model.keras").write_bytes(b"partial")
    hour_ago = os.stat(stale).st_mtime - 7200
    for path in (stale / "model.keras", stale):
        os.utime(path, (hour_ago, hour_ago))
    removed = ModelStore(tiny_store).remove_stale_temporaries(older_than=3600)
    assert removed == [".tmp-old-1234"] and not stale.exists() and fresh.exists()


def test_a_model_keras_cannot_call_again_is_listed_as_broken(tiny_store, monkeypatch):
    """Whatever Keras raises while the engine reaches the layers, the model is broken with the reason and the others
    stay listed (one such model once took the whole list, and with it every page, down)."""

    def refuse(model, image_shape=None):
        raise ValueError("Output with path `0` is not connected to `inputs`")

    monkeypatch.setattr("app.core.activations.trace_layers", refuse)
    store = ModelStore(tiny_store)
    with pytest.raises(BrokenModel, match="cannot reach the model's layers: Output with path"):
        store.get("tiny")
    rows = {entry.name: entry for entry in store.entries()}
    assert not rows["tiny"].ok and "not connected" in rows["tiny"].reason and "corrupt" in rows


def test_opening_a_model_runs_its_first_test_image_so_a_first_view_finds_it_cached(tiny_store):
    loaded = ModelStore(tiny_store).get("tiny")
    assert loaded.engine.is_cached(0) and not loaded.engine.is_cached(1)
    expected = keras.Model(loaded.model.inputs, loaded.model.outputs)(loaded.images[:1]).numpy()[0]
    np.testing.assert_allclose(loaded.engine.probabilities(0), expected, rtol=1e-5, atol=1e-6)


def test_a_model_that_fails_on_its_first_test_image_is_listed_as_broken(tiny_store, monkeypatch):
    def failing(model, **options):
        def call(images):
            raise RuntimeError("OOM when allocating tensor with shape [1, 4096, 4096]")
        return call

    monkeypatch.setattr("app.core.activations.compiled", failing)
    store = ModelStore(tiny_store)
    with pytest.raises(BrokenModel, match="fails on its first test image: OOM when allocating"):
        store.get("tiny")
    assert not {entry.name: entry for entry in store.entries()}["tiny"].ok


def deleting_first(store: ModelStore, name: str, function):
    """``function`` that first deletes model ``name`` from the store, as another request may at that moment."""

    def wrapper(*args, **kwargs):
        if (store.root / name).exists():
            store.delete(name)
        return function(*args, **kwargs)

    return wrapper


# Where a delete can fall between the store's checks and its reads: after the folder's existence check (while its
# location is checked), before the version is read from the files (legacy-h5's cnn.h5 is found by listing the
# folder), and while the model's files are read.
VANISHING_POINTS = ["resolve_inside", "model_version", "read_model_files"]


@pytest.mark.parametrize("point", VANISHING_POINTS)
@pytest.mark.parametrize("name", ["tiny", "legacy-h5"])
def test_a_model_deleted_while_it_is_opened_is_not_found(tiny_store, monkeypatch, point, name):
    import app.core.store as store_module

    store = ModelStore(tiny_store)
    monkeypatch.setattr(store_module, point, deleting_first(store, name, getattr(store_module, point)))
    with pytest.raises(ModelNotFound, match=f"no model named '{name}'"):
        store.get(name)
    assert name not in store.names()


@pytest.mark.parametrize("point", VANISHING_POINTS)
@pytest.mark.parametrize("name", ["tiny", "legacy-h5", "corrupt"])
def test_a_model_deleted_while_the_store_is_listed_is_left_out(tiny_store, monkeypatch, point, name):
    import app.core.store as store_module

    store = ModelStore(tiny_store)
    monkeypatch.setattr(store_module, point, deleting_first(store, name, getattr(store_module, point)))
    entries = {entry.name: entry for entry in store.entries()}
    assert set(entries) == {"tiny", "legacy-h5", "corrupt", "no-test-set", "empty"} - {name}
    assert all(entries[other].ok for other in ("tiny", "legacy-h5") if other != name)
    assert not any(entries[other].ok for other in ("corrupt", "no-test-set", "empty") if other != name)



def test_a_failure_no_reader_anticipated_lists_that_model_as_broken_and_the_others_keep_working(tiny_store,
                                                                                              monkeypatch):
    import tokenize

    import app.core.store as store_module

    real_read = store_module.read_model_files

    def read(folder, *limits):
        if folder.name == "legacy-h5":  # e.g. numpy's header parser raising TokenError, as it once did
            raise tokenize.TokenError("EOF in multi-line string", (1, 10))
        return real_read(folder, *limits)

    monkeypatch.setattr(store_module, "read_model_files", read)
    store = ModelStore(tiny_store)
    entries = {entry.name: entry for entry in store.entries()}
    assert entries["tiny"].ok and not entries["legacy-h5"].ok
    assert entries["legacy-h5"].reason == "cannot open the model (TokenError: ('EOF in multi-line string', (1, 10)))"
    with pytest.raises(BrokenModel, match="TokenError"):
        store.get("legacy-h5")


def test_test_set_files_that_are_not_what_numpy_loads_as_arrays_are_listed_broken(tmp_path):
    keras.backend.clear_session()
    images, labels = tiny_test_set()
    for name in ("blog-pair", "zip-as-npy", "raw-images", "npy-as-npz"):
        (tmp_path / name).mkdir()
        build_tiny_model().save(tmp_path / name / "model.keras")
    # the blog's two files, each under the limit, together over it: 24 x 6 x 6 x 1 and 24 x 100 float32, 3,456 +
    # 9,600 = 13,056 bytes
    np.save(tmp_path / "blog-pair" / "test_imgs.npy", images)
    np.save(tmp_path / "blog-pair" / "test_labels.npy", np.zeros((24, 100), np.float32))
    # a zip named .npy: np.load answers with the archive, not an array
    np.save(tmp_path / "zip-as-npy" / "test_labels.npy", labels)
    np.savez(tmp_path / "zip-as-npy" / "test_imgs.npz", images=images)
    (tmp_path / "zip-as-npy" / "test_imgs.npz").rename(tmp_path / "zip-as-npy" / "test_imgs.npy")
    # an .npz member that is not .npy data: np.load answers with its bytes
    np.savez(tmp_path / "raw-images" / "test_set.npz", labels=labels)
    with zipfile.ZipFile(tmp_path / "raw-images" / "test_set.npz", "a") as archive:
        archive.writestr("images", b"not an array")
    # .npy data named test_set.npz: np.load answers with that array
    np.save(tmp_path / "npy-as-npz" / "test_set.npy", images)
    (tmp_path / "npy-as-npz" / "test_set.npy").rename(tmp_path / "npy-as-npz" / "test_set.npz")
    store = ModelStore(tmp_path, test_set_max_bytes=10_000)
    entries = {entry.name: entry for entry in store.entries()}
    assert entries["blog-pair"].reason == ("test set refused: its files declare 13.1 kB of arrays together; the limit "
                                           "is 10.0 kB (TEST_SET_MAX_MB)")
    assert entries["zip-as-npy"].reason == "the test set's images are not .npy array data"
    assert entries["raw-images"].reason == "the test set's images are not .npy array data"
    assert entries["npy-as-npz"].reason == "test_set.npz is not an .npz (zip) archive"


def test_a_large_test_set_is_saved_to_be_read_from_disk_and_a_small_one_compressed(tmp_path, monkeypatch):
    import app.core.store as store_module
    from app.core.model_files import load_test_set
    from tests.conftest import build_tiny_model, tiny_test_set

    images, labels = tiny_test_set(n=40)
    store = store_module.ModelStore(tmp_path)
    store.save("small", build_tiny_model(), images, labels, {})
    assert not isinstance(load_test_set(tmp_path / "small")[0], np.memmap)
    monkeypatch.setattr(store_module, "MAPPED_TEST_SET_MIN_BYTES", images.size * 4 - 1)
    store.save("large", build_tiny_model(), images, labels, {})
    mapped, got_labels = load_test_set(tmp_path / "large")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, images)
    np.testing.assert_array_equal(got_labels, labels)
