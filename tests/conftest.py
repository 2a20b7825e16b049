"""Shared fixtures: tiny Keras models, temporary model stores, and headless Debian chromium for dash_duo."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from app.config import PROJECT_ROOT
from tests.app_context import refresh_context

# Property tests judge inputs, not speed: on a busy 2-core machine, generating 400 query strings can pass
# hypothesis's time limits (seen as "too_slow" health checks and missed deadlines while other tests ran).
settings.register_profile("inputs-not-timing", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("inputs-not-timing")

@pytest.fixture(scope="session", autouse=True)
def inside_the_app():
    """Every test runs in an application context of ``app.main.server``, as a request to it does: page and UI
    functions called directly reach the app's context (:func:`app.context.app_context`)."""
    from app.main import server

    with server.app_context():
        yield


BUNDLED_MODEL = PROJECT_ROOT / "model_store" / "mnist-cnn"


def pytest_setup_options():
    """dash_duo's Chrome options: Debian's chromium, no network chatter (the machine has no internet)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    return options


def build_tiny_model(default_names: bool = False, functional: bool = False, activation: str = "relu"):
    """A 6x6x1 -> 3-class CNN: conv 2 maps 3x3 relu, 2x2 max pool, flatten, dense 4 relu, dense 3 softmax.

    Args:
        default_names: leave the dense layers unnamed so Keras picks names like ``dense_1``.
        functional: build it with the functional API instead of Sequential.
        activation: the conv and hidden dense layers' activation instead of relu ("linear" carries a NaN input
            through to the output: on some CPUs TensorFlow's traced relu turns NaN into 0).
    """
    import keras

    keras.utils.set_random_seed(7)
    dense_names = (None, None) if default_names else ("hidden", "output")
    layers = [
        keras.layers.Conv2D(2, 3, activation=activation, name="conv"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(4, activation=activation, name=dense_names[0]),
        keras.layers.Dense(3, activation="softmax", name=dense_names[1]),
    ]
    if not functional:
        return keras.Sequential([keras.Input((6, 6, 1)), *layers])
    inputs = keras.Input((6, 6, 1))
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs)


def tiny_test_set(n: int = 24, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random 6x6x1 images in [0, 1] with labels cycling 0, 1, 2."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1), dtype=np.float32), np.arange(n) % 3


def write_model_folder(root: Path, name: str, model, images, labels, model_file: str = "model.keras") -> Path:
    """A store folder with ``model_file`` and ``test_set.npz``."""
    folder = root / name
    folder.mkdir(parents=True)
    model.save(folder / model_file)
    np.savez(folder / "test_set.npz", images=images, labels=labels)
    return folder


# A layer of more maps than one page of Explore holds: 300 maps of 16 x 16 (pages of 64: five, the last of 44).
MANY_MAPS_LAYER = "wide"
MANY_MAPS = 300


def write_many_maps_model(root: Path, name: str = "many-maps") -> Path:
    """A store folder with a small CNN whose conv layer ``wide`` has :data:`MANY_MAPS` maps of 16 x 16 (relu, on
    12 random 16 x 16 grey images, 3 classes), its maps' means all different."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(MANY_MAPS, 3, padding="same", activation="relu", name=MANY_MAPS_LAYER,
                            bias_initializer=keras.initializers.RandomUniform(0.0, 0.5, seed=1)),
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dense(3, activation="softmax", name="output"),
    ])
    images = np.random.default_rng(5).uniform(0, 1, size=(12, 16, 16, 1)).astype(np.float32)
    return write_model_folder(root, name, model, images, np.arange(12) % 3)


def layer_outputs(loaded, layer_name: str, indices=None) -> np.ndarray:
    """Outputs of ``layer_name`` for test images ``indices`` (default: all), from a truncated Keras model built
    here, independently of the activation engine: the reference the engine's answers are checked against."""
    import keras

    model = loaded.model
    submodel = keras.Model(model.inputs, model.get_layer(layer_name).output)
    images = loaded.images if indices is None else loaded.images[np.asarray(indices)]
    return np.asarray(submodel.predict(images, verbose=0))


@pytest.fixture
def tiny_loaded(tiny_store):
    """The tiny model of ``tiny_store`` opened (24 images, 3 classes)."""
    from app.core.store import ModelStore

    return ModelStore(tiny_store).get("tiny")


@pytest.fixture
def tiny_model():
    """The tiny Sequential CNN (fresh Keras session)."""
    import keras

    keras.backend.clear_session()
    return build_tiny_model()


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    """A store with a good tiny model, a legacy .h5 one with default names, and three broken folders."""
    return fill_tiny_store(tmp_path / "store")


def fill_tiny_store(root: Path) -> Path:
    """Write the models of :func:`tiny_store` into the new folder ``root``; return ``root``."""
    images, labels = tiny_test_set()
    write_model_folder(root, "tiny", build_tiny_model(), images, labels)
    write_model_folder(root, "legacy-h5", build_tiny_model(default_names=True), images, labels, "cnn.h5")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "model.keras").write_bytes(b"not a zip file")
    np.savez(root / "corrupt" / "test_set.npz", images=images, labels=labels)
    write_model_folder(root, "no-test-set", build_tiny_model(), images, labels)
    (root / "no-test-set" / "test_set.npz").unlink()
    (root / "empty").mkdir()
    return root


@pytest.fixture
def app_store(tiny_store: Path, monkeypatch) -> Path:
    """``tiny_store`` plus a copy of the bundled ``mnist-cnn``, installed as the app's MODEL_STORE."""
    shutil.copytree(BUNDLED_MODEL, tiny_store / "mnist-cnn")
    monkeypatch.setenv("MODEL_STORE", str(tiny_store))
    refresh_context()
    yield tiny_store
    refresh_context()


@pytest.fixture
def app_state(app_store: Path, tmp_path: Path, monkeypatch) -> Path:
    """``app_store`` with a state folder of the test's own (job store, your own images), so what a test adds starts
    from nothing and goes with it; jobs are kept in SQLite there even where REDIS_URL is set. Returns the folder."""
    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIR", str(state))
    monkeypatch.delenv("REDIS_URL", raising=False)
    refresh_context()
    return state
