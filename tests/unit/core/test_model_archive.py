"""A model file's archive, weights and declared layers are checked before Keras opens it (the issue's item 4 and
the 2,704 × 100,000 Dense of item 2): each hostile file is refused with the part and the limit named, Keras'
loader is never called, and a good model's numbers match Keras' own."""

from __future__ import annotations

import time
import zipfile

import keras
import pytest

from app.core import model_files
from app.core.model_archive import MAX_KERAS_MEMBERS, RefusedModelFile, inspect_model_file
from app.core.model_files import BrokenModel, read_model_files
from tests.conftest import BUNDLED_MODEL, build_tiny_model, tiny_test_set, write_model_folder
from tests.hostile_models import (
    asset_members_file,
    declared_weights_file,
    huge_dense_file,
    many_members_file,
    padded_config_file,
)

LIMIT = 200_000_000


@pytest.fixture
def never_loaded(monkeypatch):
    """Keras' loader raises if called: a refused file must never reach it."""
    def refuse(*args, **kwargs):
        raise AssertionError("keras.saving.load_model was called on a file that should have been refused")

    monkeypatch.setattr(keras.saving, "load_model", refuse)


def test_a_good_model_declares_what_keras_builds():
    facts = inspect_model_file(BUNDLED_MODEL / "model.keras", LIMIT)
    model = keras.saving.load_model(BUNDLED_MODEL / "model.keras", compile=False)
    assert facts.parameters == model.count_params()
    assert facts.variable_bytes == 4 * model.count_params()
    assert [v.shape for v in facts.variables] == [tuple(w.shape) for w in model.weights]
    assert facts.weight_bytes >= facts.variable_bytes  # the weights file holds every variable


def test_a_legacy_h5_model_is_measured_too(tmp_path):
    model = build_tiny_model(default_names=True)
    model.save(tmp_path / "cnn.h5")
    facts = inspect_model_file(tmp_path / "cnn.h5", LIMIT)
    assert facts.legacy and facts.parameters == model.count_params()


def test_a_declared_huge_dense_layer_is_refused_before_a_variable_is_allocated(tmp_path, never_loaded):
    path = huge_dense_file(tmp_path / "model.keras")
    assert path.stat().st_size < 200_000
    start = time.monotonic()
    with pytest.raises(RefusedModelFile, match=r"270,500,000 parameters.*dense/kernel alone is 2704×100000"):
        inspect_model_file(path, LIMIT)
    assert time.monotonic() - start < 5  # was 28 s and 3.7 GB before the refusal
    # the deferred variables are dropped: a later stateless scope (Keras traces in them) does not allocate them
    from keras.src.backend.common import global_state

    assert not global_state.get_global_attribute("uninitialized_variables")


@pytest.mark.parametrize(("build", "reason"), [
    (padded_config_file, r"config\.json unpacks to 5\.\d MB; a model's configuration is at most 4\.0 MB"),
    (asset_members_file, r"members beyond the model's configuration and weights unpack to 24\.0 MB"),
    (many_members_file, rf"holds 10\d members; a Keras model has at most {MAX_KERAS_MEMBERS}"),
    (declared_weights_file, r"its weights declare 400\.\d MB; the limit is 200\.0 MB"),
])
def test_an_archive_that_unpacks_to_more_than_it_stores_is_refused_unopened(tmp_path, never_loaded, build, reason):
    path = build(tmp_path / "model.keras", build_tiny_model())
    assert path.stat().st_size < 300_000
    with pytest.raises(RefusedModelFile, match=reason):
        inspect_model_file(path, LIMIT)


def test_a_member_larger_than_the_limit_is_refused(tmp_path, never_loaded):
    path = asset_members_file(tmp_path / "model.keras", build_tiny_model())
    with pytest.raises(RefusedModelFile, match=r"'assets/pad0\.bin' unpacks to 3\.0 MB; the limit is 2\.0 MB"):
        inspect_model_file(path, 2_000_000)


def test_a_legacy_h5_declaring_huge_weights_is_refused(tmp_path, never_loaded):
    import h5py
    import numpy as np

    build_tiny_model().save(tmp_path / "cnn.h5")
    with h5py.File(tmp_path / "cnn.h5", "a") as handle:
        handle.create_dataset("padding", shape=(100_000_000,), dtype=np.float32, chunks=(1_000_000,),
                              compression="gzip")
    with pytest.raises(RefusedModelFile, match=r"weights declare 400\.\d MB"):
        inspect_model_file(tmp_path / "cnn.h5", LIMIT)


def test_a_dropped_in_hostile_file_makes_a_broken_model_with_the_reason(tmp_path, never_loaded):
    images, labels = tiny_test_set()
    folder = write_model_folder(tmp_path, "padded", build_tiny_model(), images, labels)
    padded_config_file(folder / "model.keras", build_tiny_model())
    assert zipfile.is_zipfile(folder / "model.keras")
    with pytest.raises(BrokenModel, match="config.json unpacks to"):
        read_model_files(folder)
    with pytest.raises(BrokenModel, match="the limit is 1.0 MB"):
        read_model_files(folder, model_max_bytes=1_000_000)
    assert model_files.DEFAULT_MODEL_MAX_BYTES == LIMIT


def test_a_legacy_h5_declaring_a_huge_dense_layer_is_refused_before_a_variable_is_allocated(tmp_path, never_loaded):
    import json

    import h5py

    from tests.hostile_models import small_dense_model

    small_dense_model().save(tmp_path / "cnn.h5")
    with h5py.File(tmp_path / "cnn.h5", "a") as handle:
        config = json.loads(handle.attrs["model_config"])
        next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")["config"]["units"] = 10**5
        handle.attrs["model_config"] = json.dumps(config)
    with pytest.raises(RefusedModelFile, match=r"270,500,000 parameters .* alone is 2704×100000 = 1\.1 GB"):
        inspect_model_file(tmp_path / "cnn.h5", LIMIT)
