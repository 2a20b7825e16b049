"""app.core.model_files: model names, finding the model file, reading test sets and meta.json, model versions,
and read_model_files' checks that a folder's files fit together."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.model_files import (
    BrokenModel,
    InvalidName,
    clean_meta,
    find_model_file,
    json_default,
    load_test_set,
    model_version,
    read_meta,
    read_model_files,
    validate_name,
)
from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder

NAME_CHARS = "abcXYZ019_.-"


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(alphabet=NAME_CHARS + "/\\ \n\x00é", max_size=70))
def test_validate_name_accepts_exactly_the_documented_names(name):
    expected = (
        1 <= len(name) <= 64
        and name[0].isascii() and name[0].isalnum()
        and all(c in NAME_CHARS for c in name)
        and ".." not in name
    )
    if expected:
        assert validate_name(name) == name
    else:
        with pytest.raises(InvalidName):
            validate_name(name)


@pytest.mark.parametrize("name", ["../x", "a/b", "name\n", "", "-a", ".hidden", "a" * 65, "a..b", None, 3])
def test_validate_name_refuses_names_that_could_escape_the_store(name):
    with pytest.raises(InvalidName):
        validate_name(name)


def test_find_model_file_prefers_model_keras_then_h5_then_first_other(tmp_path):
    assert find_model_file(tmp_path) is None
    (tmp_path / "b.h5").write_bytes(b"x")
    (tmp_path / "a.keras").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    assert find_model_file(tmp_path).name == "a.keras"
    (tmp_path / "model.h5").write_bytes(b"x")
    assert find_model_file(tmp_path).name == "model.h5"
    (tmp_path / "model.keras").write_bytes(b"x")
    assert find_model_file(tmp_path).name == "model.keras"


def test_load_test_set_reads_back_what_was_written_as_float32_and_int64(tmp_path):
    images, labels = tiny_test_set(n=7)
    np.savez(tmp_path / "test_set.npz", images=images.astype(np.float64), labels=labels.astype(np.uint8))
    got_images, got_labels = load_test_set(tmp_path)
    assert got_images.dtype == np.float32 and got_labels.dtype == np.int64
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_test_set_reads_the_blogs_npy_files_with_one_hot_labels_and_adds_a_channel(tmp_path):
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    labels = np.array([2, 0, 1])
    np.save(tmp_path / "test_imgs.npy", images)
    np.save(tmp_path / "test_labels.npy", np.eye(3)[labels].astype(np.int64))
    got_images, got_labels = load_test_set(tmp_path)
    assert got_images.shape == (3, 4, 4, 1)
    np.testing.assert_array_equal(got_images[..., 0], images.astype(np.float32))
    np.testing.assert_array_equal(got_labels, labels)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 3, 3, 1))}, "lacks labels"),
        ({"images": np.zeros((2, 3, 3, 1)), "labels": np.zeros(3, int)}, "shapes do not fit"),
        ({"images": np.zeros((0, 3, 3, 1)), "labels": np.zeros(0, int)}, "shapes do not fit"),
        ({"images": np.zeros((2, 3, 3, 1)), "labels": np.zeros(2)}, "must be integers"),
        ({"images": np.zeros((2, 3, 3, 1), complex), "labels": np.zeros(2, int)}, "real numbers"),
    ],
)
def test_load_test_set_refuses_arrays_that_do_not_fit(tmp_path, arrays, message):
    np.savez(tmp_path / "test_set.npz", **arrays)
    with pytest.raises(BrokenModel, match=message):
        load_test_set(tmp_path)


def test_load_test_set_refuses_a_missing_or_oversized_or_non_zip_test_set(tmp_path):
    with pytest.raises(BrokenModel, match="no test set"):
        load_test_set(tmp_path)
    np.savez(tmp_path / "test_set.npz", images=np.zeros((10, 8, 8, 1), np.uint8), labels=np.zeros(10, int))
    # 640 uint8 pixels take 2,560 bytes as float32: over a 2,000-byte limit though the file itself is smaller
    with pytest.raises(BrokenModel, match="float32"):
        load_test_set(tmp_path, max_bytes=2000)
    assert load_test_set(tmp_path, max_bytes=4000)[0].shape == (10, 8, 8, 1)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    os.replace(tmp_path / "plain.npy", tmp_path / "test_set.npz")
    with pytest.raises(BrokenModel, match="not an .npz"):
        load_test_set(tmp_path)


def test_load_test_set_refuses_a_test_set_linked_from_outside_the_folder(tmp_path):
    outside = tmp_path / "outside.npz"
    np.savez(outside, images=np.zeros((2, 3, 3, 1)), labels=np.zeros(2, int))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "test_set.npz").symlink_to(outside)
    with pytest.raises(BrokenModel, match="not usable"):
        load_test_set(folder)


def test_model_version_changes_with_the_files_and_is_missing_for_an_empty_folder(tmp_path):
    assert model_version(tmp_path) == "missing"
    (tmp_path / "model.keras").write_bytes(b"abc")
    first = model_version(tmp_path)
    assert len(first) == 12 and first == model_version(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"abcd")
    second = model_version(tmp_path)
    assert second != first
    np.savez(tmp_path / "test_set.npz", images=np.zeros((1, 2, 2, 1)), labels=np.zeros(1, int))
    assert model_version(tmp_path) != second


def test_clean_meta_keeps_only_known_fields_of_the_expected_type():
    raw = {
        "dataset": "mnist", "created": 5, "class_names": ["a", 1], "config": {"x": 1}, "history": "no",
        "metrics": {"acc": 0.9, "flag": True, "name": "x", 3: 2}, "stopped": False, "epochs_completed": 3,
        "duration_seconds": 1.5, "unknown": "dropped",
    }
    assert clean_meta(raw) == {
        "dataset": "mnist", "class_names": ["a", 1], "config": {"x": 1}, "metrics": {"acc": 0.9, "3": 2},
        "stopped": False, "epochs_completed": 3, "duration_seconds": 1.5,
    }
    assert clean_meta({"class_names": ["a", None]}) == {}
    assert clean_meta(["not", "a", "dict"]) == {}


def test_read_meta_returns_the_cleaned_file_and_empty_for_missing_or_bad_files(tmp_path):
    assert read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text(json.dumps({"dataset": "d", "class_names": ["x", "y"], "junk": 1}))
    assert read_meta(tmp_path) == {"dataset": "d", "class_names": ["x", "y"]}
    (tmp_path / "meta.json").write_text("{not json")
    assert read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text("[" * 100 + "]" * 100)
    assert read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text(json.dumps({"dataset": "x" * 1_100_000}))
    assert read_meta(tmp_path) == {}


def test_read_model_files_returns_the_written_model_test_set_and_class_names(tmp_path):
    images, labels = tiny_test_set(n=9)
    model = build_tiny_model()
    folder = write_model_folder(tmp_path, "m", model, images, labels)
    (folder / "meta.json").write_text(json.dumps({"class_names": ["cat", "dog", "eel"], "dataset": "pets"}))
    files = read_model_files(folder)
    np.testing.assert_array_equal(files.images, images)
    np.testing.assert_array_equal(files.labels, labels)
    assert files.class_names == ["cat", "dog", "eel"] and files.meta["dataset"] == "pets" and files.notes == ()
    np.testing.assert_allclose(files.model.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)


def test_read_model_files_names_classes_by_number_when_meta_does_not_fit(tmp_path):
    images, labels = tiny_test_set(n=6)
    folder = write_model_folder(tmp_path, "m", build_tiny_model(), images, labels)
    (folder / "meta.json").write_text(json.dumps({"class_names": ["only", "two"]}))
    assert read_model_files(folder).class_names == ["0", "1", "2"]


def test_read_model_files_refuses_labels_outside_the_models_classes(tmp_path):
    images, _ = tiny_test_set(n=4)
    folder = write_model_folder(tmp_path, "m", build_tiny_model(), images, np.array([0, 1, 2, 3]))
    with pytest.raises(BrokenModel, match="labels run from 0 to 3"):
        read_model_files(folder)


def test_read_model_files_refuses_test_images_of_another_shape(tmp_path):
    images = np.zeros((3, 7, 7, 1), np.float32)
    folder = write_model_folder(tmp_path, "m", build_tiny_model(), images, np.array([0, 1, 2]))
    with pytest.raises(BrokenModel, match="does not fit test images"):
        read_model_files(folder)


def test_read_model_files_refuses_a_missing_or_corrupt_model_file(tmp_path):
    images, labels = tiny_test_set(n=3)
    np.savez(tmp_path / "test_set.npz", images=images, labels=labels)
    with pytest.raises(BrokenModel, match="no model file"):
        read_model_files(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(BrokenModel, match="not a Keras zip archive"):
        read_model_files(tmp_path)


def test_json_default_converts_numpy_values_and_refuses_others():
    assert json.dumps({"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(7)}, default=json_default) == (
        '{"a": 0.5, "b": [0, 1, 2], "c": 7}'
    )
    with pytest.raises(TypeError, match="set"):
        json_default({1})


def test_an_uncompressed_float32_test_set_is_read_from_disk_as_used_not_held(tmp_path):
    images, labels = tiny_test_set(n=9)
    np.savez(tmp_path / "test_set.npz", images=images.astype(np.float32), labels=labels)
    got_images, got_labels = load_test_set(tmp_path, max_bytes=1000)  # beyond what may be held: it is not held
    assert isinstance(got_images, np.memmap) and not got_images.flags.writeable
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int64


@pytest.mark.parametrize("how", ["compressed", "float64"])
def test_a_compressed_or_other_dtype_test_set_is_loaded_and_held_as_before(tmp_path, how):
    images, labels = tiny_test_set(n=9)
    if how == "compressed":
        np.savez_compressed(tmp_path / "test_set.npz", images=images.astype(np.float32), labels=labels)
    else:
        np.savez(tmp_path / "test_set.npz", images=images.astype(np.float64), labels=labels)
    got_images, _ = load_test_set(tmp_path)
    assert not isinstance(got_images, np.memmap) and got_images.dtype == np.float32
    np.testing.assert_array_equal(got_images, images)
    with pytest.raises(BrokenModel, match="limit"):
        load_test_set(tmp_path, max_bytes=1000)


def test_a_mapped_test_set_cut_short_or_with_bad_labels_is_refused(tmp_path):
    images, labels = tiny_test_set(n=9)
    np.savez(tmp_path / "test_set.npz", images=images.astype(np.float32), labels=labels[:5])
    with pytest.raises(BrokenModel, match="shapes do not fit"):
        load_test_set(tmp_path)
    np.savez(tmp_path / "test_set.npz", images=images.astype(np.float32), labels=labels)
    data = (tmp_path / "test_set.npz").read_bytes()
    (tmp_path / "test_set.npz").write_bytes(data[: len(data) // 2])  # a copy that stopped halfway
    with pytest.raises(BrokenModel):
        load_test_set(tmp_path)
