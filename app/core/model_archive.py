"""What a Keras model file declares, read and bounded before Keras opens it.

Keras trusts its files: it reads a ``.keras`` archive's ``config.json`` whole (a 1.1 MB file padded with 1 GiB of
spaces cost every worker 2 GB), extracts every member to a temporary folder when there are more than three (eight
255 MiB members of zeros made each open, a viewer's model listing included, write 2 GiB), and builds every layer
the configuration declares before it looks at the weights (a 100 kB file declaring a 2,704 × 100,000 Dense layer
allocated 1 GB before it was refused). :func:`inspect_model_file` checks all of that from the zip directory, the
HDF5 headers and the configuration alone:

- ``.keras``: at most :data:`MAX_KERAS_MEMBERS` members, each and all together at most ``max_bytes`` unpacked
  (the upload limit), ``config.json`` at most :data:`MAX_CONFIG_BYTES`, read with the bounded JSON reader, and the
  members Keras extracts on every open (assets) at most :data:`MAX_ASSET_BYTES` together;
- the weights (``model.weights.h5`` or a legacy ``.h5`` file): the declared size of every dataset, from HDF5
  headers without reading data, at most ``max_bytes``;
- the layers: built from the configuration with deferred variables (:func:`declared_variables`), so their shapes
  are known and nothing is allocated; the variables together at most ``max_bytes``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from app.core.errors import ExplorerError, InvalidInput
from app.core.limits import format_bytes
from app.core.parsing import loads_json

# Keras writes three members (metadata.json, config.json, model.weights.h5) and an assets/ folder for the few layers
# that have assets (lookup tables' vocabularies): a model folder's worth, as an uploaded archive may hold.
MAX_KERAS_MEMBERS = 64
# ResNet50's config.json is 176 kB, MobileNetV2's 163 kB (about 1 kB per layer): 4 MB leaves room for thousands.
MAX_CONFIG_BYTES = 4_000_000
# Keras configs nest ~10 levels (a nested model's layer's initializer's config); a backbone inside a model adds 3.
MAX_CONFIG_DEPTH = 64
METADATA_MAX_BYTES = 100_000
# With more than three members Keras extracts the whole archive to a temporary folder on every open (Keras 3.15,
# saving_lib.DiskIOStore): the members beyond the standard three are bounded by this, not by the upload limit.
MAX_ASSET_BYTES = 16_000_000
# A model's weights file holds a few HDF5 objects per layer (ResNet50: 676, MobileNetV2: 576); walking a million
# objects of a crafted file would take minutes.
MAX_WEIGHT_OBJECTS = 100_000
COPY_CHUNK = 1 << 20
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"


class RefusedModelFile(InvalidInput):
    """A model file whose archive, weights or declared layers break a limit; Keras never opens it."""


@dataclass(frozen=True)
class Variable:
    """One weight tensor the model's configuration declares.

    Attributes:
        path: Keras' path of the variable (``dense/kernel``).
        shape: its shape.
        nbytes: its size once allocated.
    """

    path: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class ModelFileFacts:
    """What a model file declares, checked against the limits.

    Attributes:
        config: the model's configuration (``config.json`` or a legacy file's ``model_config``).
        legacy: the file is a legacy HDF5 model (Keras 2's format).
        weight_bytes: the declared size of every dataset of its weights.
        variables: the variables its layers create (empty when they could not be built without Keras' loader).
    """

    config: dict[str, Any]
    legacy: bool
    weight_bytes: int
    variables: tuple[Variable, ...] = ()

    @property
    def parameters(self) -> int:
        """Weights and biases of every layer, as declared."""
        return sum(math.prod(variable.shape) for variable in self.variables)

    @property
    def variable_bytes(self) -> int:
        """Memory the variables take once allocated."""
        return sum(variable.nbytes for variable in self.variables)


def _refuse(path: Path, reason: str) -> RefusedModelFile:
    return RefusedModelFile(f"{path.name} refused: {reason}")


def _check_members(path: Path, archive: zipfile.ZipFile, max_bytes: int) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    if len(members) > MAX_KERAS_MEMBERS:
        raise _refuse(path, f"the archive holds {len(members):,} members; a Keras model has at most "
                            f"{MAX_KERAS_MEMBERS}")
    for info in members:
        if info.file_size > max_bytes:
            raise _refuse(path, f"the member {info.filename[:80]!r} unpacks to {format_bytes(info.file_size)}; the "
                                f"limit is {format_bytes(max_bytes)} (MAX_UPLOAD_BYTES)")
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise _refuse(path, f"the archive unpacks to {format_bytes(total)}; the limit is {format_bytes(max_bytes)} "
                            "(MAX_UPLOAD_BYTES)")
    names = {info.filename for info in members}
    if CONFIG_FILE not in names:
        raise _refuse(path, f"the archive has no {CONFIG_FILE}: not a Keras model")
    if len(members) > 3:
        assets = sum(info.file_size for info in members
                     if info.filename not in (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE))
        if assets > MAX_ASSET_BYTES:
            raise _refuse(path, f"its members beyond the model's configuration and weights unpack to "
                                f"{format_bytes(assets)}, which Keras would extract on every open; the limit is "
                                f"{format_bytes(MAX_ASSET_BYTES)}")
    return members


def _read_config(path: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    info = archive.getinfo(CONFIG_FILE)
    if info.file_size > MAX_CONFIG_BYTES:
        raise _refuse(path, f"its {CONFIG_FILE} unpacks to {format_bytes(info.file_size)}; a model's configuration "
                            f"is at most {format_bytes(MAX_CONFIG_BYTES)}")
    with archive.open(info) as member:
        data = member.read(MAX_CONFIG_BYTES + 1)
    return _parse_config(path, data)


def _parse_config(path: Path, data: bytes | str) -> dict[str, Any]:
    try:
        config = loads_json(data, max_depth=MAX_CONFIG_DEPTH, max_bytes=MAX_CONFIG_BYTES)
    except InvalidInput as exc:
        raise _refuse(path, f"its model configuration is unusable: {exc}") from exc
    if not isinstance(config, dict):
        raise _refuse(path, "its model configuration is not a JSON object")
    return config


def _dataset_bytes(path: Path, handle: Any) -> int:
    """The declared size of every dataset in an open HDF5 file or group; no data is read."""
    total = 0
    seen = 0

    def visit(_name: str, item: Any) -> int | None:
        nonlocal total, seen
        seen += 1
        if seen > MAX_WEIGHT_OBJECTS:
            return 1  # stops the walk; the count is refused below
        if isinstance(item, h5py.Dataset):
            total += (item.size or 0) * item.dtype.itemsize
        return None

    handle.visititems(visit)
    if seen > MAX_WEIGHT_OBJECTS:
        raise _refuse(path, f"its weights hold more than {MAX_WEIGHT_OBJECTS:,} objects")
    return total


def _check_weight_bytes(path: Path, declared: int, max_bytes: int) -> None:
    if declared > max_bytes:
        raise _refuse(path, f"its weights declare {format_bytes(declared)}; the limit is {format_bytes(max_bytes)} "
                            "(MAX_UPLOAD_BYTES)")


def _inspect_keras(path: Path, max_bytes: int) -> tuple[dict[str, Any], int]:
    with zipfile.ZipFile(path) as archive:
        members = _check_members(path, archive, max_bytes)
        if any(info.filename == METADATA_FILE and info.file_size > METADATA_MAX_BYTES for info in members):
            raise _refuse(path, f"its {METADATA_FILE} is larger than {format_bytes(METADATA_MAX_BYTES)}")
        config = _read_config(path, archive)
        weight_bytes = 0
        weights = next((info for info in members if info.filename == WEIGHTS_FILE), None)
        if weights is not None:
            weight_bytes = _member_dataset_bytes(path, archive, weights)
    return config, weight_bytes


def _member_dataset_bytes(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """:func:`_dataset_bytes` of an HDF5 member. Keras stores it uncompressed, so h5py reads its headers in place;
    a compressed one is first copied to a temporary file (its size is bounded already), because HDF5 reads headers
    back and forth and every backward seek in a compressed member decompresses it again from the start."""
    with archive.open(info) as member:
        if info.compress_type == zipfile.ZIP_STORED:
            with h5py.File(member, "r") as weights:
                return _dataset_bytes(path, weights)
        with tempfile.TemporaryFile() as copy:
            shutil.copyfileobj(member, copy, COPY_CHUNK)
            copy.seek(0)
            with h5py.File(copy, "r") as weights:
                return _dataset_bytes(path, weights)


def _inspect_h5(path: Path) -> tuple[dict[str, Any], int]:
    with h5py.File(path, "r") as handle:
        weight_bytes = _dataset_bytes(path, handle)
        if "model_config" not in handle.attrs:
            raise _refuse(path, "it holds weights only, no model configuration (save the whole model)")
        size = handle.attrs.get_id("model_config").get_storage_size()
        if size > MAX_CONFIG_BYTES:
            raise _refuse(path, f"its model configuration has {format_bytes(size)}; the limit is "
                                f"{format_bytes(MAX_CONFIG_BYTES)}")
        raw = handle.attrs["model_config"]
    if hasattr(raw, "decode"):
        raw = raw.decode("utf-8", errors="replace")
    return _parse_config(path, str(raw)), weight_bytes


def declared_variables(config: dict[str, Any], legacy: bool) -> tuple[Variable, ...]:
    """The variables the model of ``config`` creates, their shapes known and nothing allocated.

    Keras builds the layers inside a ``StatelessScope(initialize_variables=False)``: each variable gets its shape
    and keeps its initializer for later, which never comes. This measures every layer Keras can load, whatever its
    kind, in milliseconds (walking the configuration ourselves would know only the layers we taught it; a separate
    process under a memory limit would cost seconds of TensorFlow start-up on every first listing of a model).
    Keras registers deferred variables in a per-thread list that the next ``StatelessScope`` would initialize: the
    list is restored afterwards, so the variables are dropped with the model.

    Args:
        config: the model configuration (``config.json``, or a legacy file's ``model_config``).
        legacy: read it as Keras 2's configuration format.

    Returns:
        One :class:`Variable` per weight tensor.

    Raises:
        Exception: whatever Keras raises for a configuration it cannot build (unknown layers, Lambda in safe mode).
    """
    import keras
    from keras.src.backend.common import global_state
    from keras.src.legacy.saving import json_utils, saving_options, saving_utils
    from keras.src.saving.serialization_lib import ObjectSharingScope, SafeModeScope

    pending = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        # the scopes Keras' own loaders use (saving_lib, legacy_h5_format): safe mode refuses Lambda's code
        with keras.StatelessScope(initialize_variables=False), SafeModeScope(True):
            if legacy:
                with saving_options.keras_option_scope(use_legacy_config=True):
                    model = saving_utils.model_from_config(json_utils.decode(json.dumps(config)))
            else:
                with ObjectSharingScope():
                    model = keras.saving.deserialize_keras_object({**config, "compile_config": None},
                                                                  safe_mode=True)
        return tuple(
            Variable(str(variable.path), tuple(int(d) for d in variable.shape),
                     math.prod(variable.shape) * _itemsize(variable.dtype))
            for variable in model.weights
        )
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def inspect_model_file(path: Path, max_bytes: int) -> ModelFileFacts:
    """Read what a ``.keras`` or legacy ``.h5`` model file declares and refuse it if it breaks a limit, before
    Keras opens it (see the module docstring for what is checked).

    Args:
        path: the model file.
        max_bytes: the most a member, the unpacked archive, the weights and the variables may take
            (``MAX_UPLOAD_BYTES``).

    Returns:
        The configuration, the weights' declared size and the declared variables.

    Raises:
        RefusedModelFile: naming the part and the limit.
    """
    legacy = path.suffix != ".keras"
    try:
        config, weight_bytes = _inspect_h5(path) if legacy else _inspect_keras(path, max_bytes)
    except ExplorerError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise RefusedModelFile(f"cannot load {path.name}: {str(exc)[:200]}") from exc
    _check_weight_bytes(path, weight_bytes, max_bytes)
    try:
        variables = declared_variables(config, legacy)
    except Exception as exc:  # noqa: BLE001 - Keras' own words for a configuration it cannot build
        raise _refuse(path, f"its layers cannot be built from the configuration: {str(exc).strip()[:300]}") from exc
    facts = ModelFileFacts(config, legacy, weight_bytes, variables)
    if facts.variable_bytes > max_bytes:
        largest = max(variables, key=lambda variable: variable.nbytes)
        shape = "×".join(str(d) for d in largest.shape)
        raise _refuse(path, f"its layers declare {facts.parameters:,} parameters "
                            f"({format_bytes(facts.variable_bytes)}); {largest.path} alone is {shape} = "
                            f"{format_bytes(largest.nbytes)}; the limit is {format_bytes(max_bytes)} "
                            "(MAX_UPLOAD_BYTES)")
    return facts


def _itemsize(dtype: str) -> int:
    """Bytes per value of a Keras dtype name (``float32`` 4, ``bfloat16`` 2, ``bool`` 1)."""
    bits = re.search(r"([0-9]+)$", str(dtype))
    return max(1, int(bits.group(1)) // 8) if bits else 1
