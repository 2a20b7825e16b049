"""Watching your own digit learn: a training job whose probe image is a drawn image's ``u:<id>`` (real user image
store in a temporary STATE_DIR, real Keras training on the bundled digits through ``run_job``) records it every
epoch, as the trained model computes it; an unknown or malformed id is refused with the reason, before training."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from app.core.store import ModelStore
from app.core.training import ConfigError
from app.core.user_images import add_drawing
from app.jobs.runner import EmbeddedRunner
from app.jobs.sqlite_store import SqliteJobStore
from app.jobs.worker import run_job
from tests.app_context import refresh_context, served_context
from tests.conftest import BUNDLED_MODEL
from tests.digit_strokes import place

pytestmark = pytest.mark.slow

QUICK = {"dataset": "mnist-subset", "conv_layers": [{"filters": 2}], "dense_layers": [], "max_train": 128,
         "max_test": 16, "epochs": 1, "batch_size": 64, "probe_layer": "Conv2D_1"}
UNKNOWN = "u:" + "0" * 20


@pytest.fixture
def workplace(tmp_path, monkeypatch):
    """(settings, job store, a drawn 7 made with the bundled model) in a state folder of their own."""
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    refresh_context()
    settings = dataclasses.replace(served_context().settings, model_store=tmp_path / "models")
    seven = add_drawing(served_context().user_images, ModelStore(BUNDLED_MODEL.parent).get("mnist-cnn"),
                        place(7, 70, 40, 200), 18, 280)
    yield settings, SqliteJobStore(tmp_path / "state" / "jobs.sqlite3"), seven
    refresh_context()


def test_a_run_watches_a_drawn_digit_as_the_trained_model_sees_it(workplace):
    settings, store, seven = workplace
    job = store.create({**QUICK, "name": "watched", "probe_image": seven.id})
    assert run_job(job.id, store, settings) == "succeeded", store.get(job.id).error
    probe = store.probe(job.id, 1)
    assert probe["image"] == seven.id and probe["layer"] == "Conv2D_1" and probe["activations"].shape == (26, 26, 2)
    shown = store.get(job.id).info["probe"]
    assert shown["image"] == seven.id and shown["label"] is None
    pixels = np.asarray(shown["pixels"], dtype=np.float32)
    # the bundled digits and the bundled model share the recipe: the input made for the run is the stored one
    # (made again from the 8-bit original picture, hence the tolerance)
    np.testing.assert_allclose(pixels, seven.model_input, atol=0.02)
    trained = ModelStore(settings.model_store).get("watched").model
    expected = keras.Model(trained.inputs, trained.get_layer("Conv2D_1").output)(pixels[np.newaxis])
    np.testing.assert_allclose(probe["activations"], np.asarray(expected)[0], rtol=0.02, atol=0.01)


def test_an_unknown_probe_image_fails_the_run_before_training_with_the_reason(workplace):
    settings, store, _ = workplace
    job = store.create({**QUICK, "name": "unwatched", "probe_image": UNKNOWN})
    assert run_job(job.id, store, settings) == "failed"
    error = store.get(job.id).error
    assert f"probe image {UNKNOWN} cannot be watched in this run" in error and "no drawn or uploaded image" in error
    assert store.epochs(job.id) == []


def test_the_runner_refuses_unknown_or_malformed_probe_images_at_once(workplace, tmp_path):
    settings, store, seven = workplace
    runner = EmbeddedRunner(store, settings.model_store, settings.data_sources, tmp_path / "logs")
    runner.user_images = served_context().user_images
    with pytest.raises(ConfigError, match="probe_image: no drawn or uploaded image"):
        runner.submit({**QUICK, "name": "a", "probe_image": UNKNOWN})
    with pytest.raises(ConfigError, match="probe_image 'u:xyz' is not an image id"):
        runner.submit({**QUICK, "name": "a", "probe_image": "u:xyz"})
    job = runner.submit({**QUICK, "name": "a", "probe_image": seven.id})
    store.claim(job.id, pid=1)
    with pytest.raises(ConfigError, match="no drawn or uploaded image"):
        runner.change_probe(job.id, UNKNOWN, "Conv2D_1")
    assert runner.change_probe(job.id, 3, "Conv2D_1").probe_request["image"] == 3
    assert runner.change_probe(job.id, seven.id, None).probe_request["image"] == seven.id
