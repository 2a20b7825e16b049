"""The issue's hostile model files, built small: each declares far more than it stores.

- :func:`upsampling_model`: a valid 28×28×1 model whose one image makes 1.0 GB of activations (UpSampling2D ×100,
  then a 32-filter conv);
- :func:`huge_dense_file`: a 120 kB ``.keras`` whose config.json declares a 2,704 × 100,000 Dense layer (1.1 GB of
  variables) next to the weights of a 10-unit one;
- :func:`padded_config_file`: a ``.keras`` whose config.json is padded with spaces (5 MB unpacked, a few kB stored);
- :func:`asset_members_file`: a ``.keras`` with eight extra members of zeros (3 MB each unpacked, a few kB stored);
- :func:`many_members_file`: a ``.keras`` with 100 members;
- :func:`declared_weights_file`: a ``.keras`` whose weights file declares a 400 MB dataset it never wrote.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ASSET_MEMBER_BYTES = 3_000_000
PADDING_BYTES = 5_000_000


def upsampling_model():
    """28×28×1 -> UpSampling2D(100) -> Conv2D(32, 3, same) 'conv' -> global average -> Dense(10, softmax)."""
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.UpSampling2D(100, name="up")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="mean")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="scores")(x))


def small_dense_model():
    """52×52×1 -> Flatten (2,704) -> Dense(10, softmax) 'dense'."""
    import keras

    inputs = keras.Input((52, 52, 1))
    x = keras.layers.Flatten(name="flat")(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="dense")(x))


def keras_members(model) -> dict[str, bytes]:
    """The members of ``model`` saved as a ``.keras`` archive."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    """A deflated zip of ``members`` at ``path``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def huge_dense_file(path: Path) -> Path:
    """:func:`small_dense_model` saved, its config.json changed to 100,000 units (the weights stay 2,704 × 10)."""
    members = keras_members(small_dense_model())
    config = json.loads(members["config.json"])
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["units"] = 100_000
    members["config.json"] = json.dumps(config).encode()
    return write_archive(path, members)


def padded_config_file(path: Path, model) -> Path:
    """``model`` saved with :data:`PADDING_BYTES` of spaces after its config.json's JSON (still valid JSON)."""
    members = keras_members(model)
    members["config.json"] += b" " * PADDING_BYTES
    return write_archive(path, members)


def asset_members_file(path: Path, model) -> Path:
    """``model`` saved with eight extra members of :data:`ASSET_MEMBER_BYTES` zeros each."""
    members = keras_members(model)
    members.update({f"assets/pad{i}.bin": bytes(ASSET_MEMBER_BYTES) for i in range(8)})
    return write_archive(path, members)


def many_members_file(path: Path, model) -> Path:
    """``model`` saved with 100 extra one-byte members."""
    members = keras_members(model)
    members.update({f"assets/{i}.txt": b"x" for i in range(100)})
    return write_archive(path, members)


def declared_weights_file(path: Path, model) -> Path:
    """``model`` saved with one more weights dataset declared as 100,000,000 float32 (400 MB), none of it written:
    chunked and compressed, the file stays a few kB."""
    import h5py

    members = keras_members(model)
    weights = io.BytesIO(members["model.weights.h5"])
    with h5py.File(weights, "a") as handle:
        handle.create_dataset("padding", shape=(100_000_000,), dtype=np.float32, chunks=(1_000_000,),
                              compression="gzip")
    members["model.weights.h5"] = weights.getvalue()
    return write_archive(path, members)
