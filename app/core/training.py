"""Build and train the blog's CNN from a validated configuration; one code path for the CLI, jobs and the build script.

The defaults are the blog's run (part III): three Conv2D layers (32/64/128, 3x3, relu) with 2x2 max pooling after
the first two, Flatten, Dense 100 relu, Dense softmax; L2 0.001 on the dense kernels; RMSprop with momentum 0.8;
inverse-time ("power") learning-rate decay from 0.001 with decay steps 1 and rate 0.001; batch size 64.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.core.datasets import Dataset, DataSources, load_dataset
from app.core.errors import InvalidInput
from app.core.model_files import InvalidName, validate_name
from app.core.parsing import shown
from app.core.user_images import is_user_image, names_user_image

ACTIVATIONS = ("relu", "sigmoid", "elu", "tanh")
OPTIMIZERS = ("rmsprop", "adam", "nadam", "adamax", "sgd")
MOMENTUM_OPTIMIZERS = ("rmsprop", "sgd")
SCHEDULES = ("none", "power", "exponential")
REGULARIZERS = ("none", "l1", "l2")
MAX_PARAMETERS = 5_000_000
MAX_TRAIN_IMAGES = 70_000
MAX_DATASET_CHARS = 300


class ConfigError(InvalidInput):
    """An invalid training configuration; ``errors`` lists every problem found, each a sentence."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors

    def details(self) -> dict[str, Any]:
        """A summary and every problem, one sentence each, for a form or an API client to show."""
        return {"error": "invalid training configuration", "errors": self.errors}


@dataclass
class ConvSpec:
    """One convolutional layer: filters, square kernel size, activation."""

    filters: int = 32
    kernel: int = 3
    activation: str = "relu"


@dataclass
class DenseSpec:
    """One hidden dense layer: nodes and activation."""

    units: int = 100
    activation: str = "relu"


@dataclass
class TrainingConfig:
    """Everything that defines a training run. Build it with :func:`parse_config` to get it validated."""

    name: str = "my-cnn"
    dataset: str = "mnist-subset"
    conv_layers: list[ConvSpec] = field(
        default_factory=lambda: [ConvSpec(32), ConvSpec(64), ConvSpec(128)]
    )
    pool_size: int = 2
    dense_layers: list[DenseSpec] = field(default_factory=lambda: [DenseSpec(100)])
    regularizer: str = "l2"
    regularizer_factor: float = 0.001
    optimizer: str = "rmsprop"
    momentum: float = 0.8
    lr_schedule: str = "power"
    learning_rate: float = 0.001
    decay_steps: int = 1
    decay_rate: float = 0.001
    batch_size: int = 64
    epochs: int = 20
    max_train: int | None = None
    max_test: int | None = None
    seed: int = 1
    # a test image's index, or a drawn or uploaded image's u:<id> (its input is made for the run's test set)
    probe_image: int | str | None = None
    probe_layer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in meta.json and sent to jobs."""
        return asdict(self)


def _check_range(errors: list[str], label: str, value: Any, low: float, high: float, integer: bool = True) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        errors.append(f"{label} must be {'an integer' if integer else 'a number'}, got {shown(value)}")
    elif not low <= value <= high:
        errors.append(f"{label} must be between {low} and {high}, got {value}")


def _check_choice(errors: list[str], label: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        errors.append(f"{label} must be one of {', '.join(choices)}, got {shown(value)}")


def _layer_spec(errors: list[str], label: str, spec: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """One layer's settings if they are an object with known keys; else a sentence in ``errors`` and ``{}``."""
    if not isinstance(spec, dict):
        example = ", ".join(f'"{key}": ...' for key in keys)
        errors.append(f"{label} must be an object such as {{{example}}}, got {shown(spec)}")
        return {}
    unknown = sorted(str(key)[:40] for key in set(spec) - set(keys))
    if unknown:
        errors.append(f"{label} has unknown settings: {', '.join(unknown)} (known: {', '.join(keys)})")
    return spec


def parse_config(raw: dict[str, Any]) -> TrainingConfig:
    """Validate a JSON-like dict into a :class:`TrainingConfig`, filling defaults for absent keys.

    Raises:
        ConfigError: listing every problem (unknown keys, wrong types, values out of bounds).
    """
    if not isinstance(raw, dict):
        raise ConfigError(["the configuration must be a JSON object"])
    defaults = TrainingConfig()
    errors: list[str] = []
    unknown = set(raw) - set(defaults.to_dict())
    if unknown:
        errors.append(f"unknown settings: {', '.join(sorted(str(key)[:40] for key in unknown)[:10])}")
    values = {**defaults.to_dict(), **{k: v for k, v in raw.items() if k not in unknown}}

    try:
        validate_name(values["name"])
    except InvalidName as exc:
        errors.append(str(exc))
    if not isinstance(values["dataset"], str) or not 0 < len(values["dataset"]) <= MAX_DATASET_CHARS:
        errors.append(f"dataset must be a name or a path of at most {MAX_DATASET_CHARS} characters")

    convs = values["conv_layers"]
    if not isinstance(convs, list) or not 1 <= len(convs) <= 6:
        errors.append("conv_layers must be a list of 1 to 6 layers")
        convs = []
    conv_specs = []
    for i, spec in enumerate(convs, start=1):
        spec = _layer_spec(errors, f"conv layer {i}", spec, ("filters", "kernel", "activation"))
        conv = ConvSpec(**{k: spec[k] for k in ("filters", "kernel", "activation") if k in spec})
        _check_range(errors, f"conv layer {i} filters", conv.filters, 1, 512)
        _check_range(errors, f"conv layer {i} kernel", conv.kernel, 1, 11)
        _check_choice(errors, f"conv layer {i} activation", conv.activation, ACTIVATIONS)
        conv_specs.append(conv)

    denses = values["dense_layers"]
    if not isinstance(denses, list) or len(denses) > 4:
        errors.append("dense_layers must be a list of at most 4 hidden layers")
        denses = []
    dense_specs = []
    for i, spec in enumerate(denses, start=1):
        spec = _layer_spec(errors, f"dense layer {i}", spec, ("units", "activation"))
        dense = DenseSpec(**{k: spec[k] for k in ("units", "activation") if k in spec})
        _check_range(errors, f"dense layer {i} units", dense.units, 1, 4096)
        _check_choice(errors, f"dense layer {i} activation", dense.activation, ACTIVATIONS)
        dense_specs.append(dense)

    _check_range(errors, "pool_size", values["pool_size"], 0, 4)
    _check_choice(errors, "regularizer", values["regularizer"], REGULARIZERS)
    _check_range(errors, "regularizer_factor", values["regularizer_factor"], 0, 1, integer=False)
    _check_choice(errors, "optimizer", values["optimizer"], OPTIMIZERS)
    _check_range(errors, "momentum", values["momentum"], 0, 0.999, integer=False)
    _check_choice(errors, "lr_schedule", values["lr_schedule"], SCHEDULES)
    _check_range(errors, "learning_rate", values["learning_rate"], 1e-7, 1, integer=False)
    _check_range(errors, "decay_steps", values["decay_steps"], 1, 1_000_000)
    _check_range(errors, "decay_rate", values["decay_rate"], 0, 100, integer=False)
    _check_range(errors, "batch_size", values["batch_size"], 1, 4096)
    _check_range(errors, "epochs", values["epochs"], 1, 500)
    for key, high in (("max_train", MAX_TRAIN_IMAGES), ("max_test", MAX_TRAIN_IMAGES)):
        if values[key] is not None:
            _check_range(errors, key, values[key], 10, high)
    _check_range(errors, "seed", values["seed"], 0, 2**31 - 1)
    probe_image = values["probe_image"]
    if names_user_image(probe_image):
        if not is_user_image(probe_image):
            errors.append(f"probe_image {shown(probe_image)} is not an image id (u: and 20 hex digits)")
    elif probe_image is not None:
        _check_range(errors, "probe_image", probe_image, 0, MAX_TRAIN_IMAGES)
    if values["probe_layer"] is not None and not (isinstance(values["probe_layer"], str)
                                                  and len(values["probe_layer"]) <= 64):
        errors.append("probe_layer must be a layer name")
    if errors:
        raise ConfigError(errors)
    values["conv_layers"], values["dense_layers"] = conv_specs, dense_specs
    return TrainingConfig(**values)


def conv_layer_names(config: TrainingConfig) -> list[str]:
    """Layer names in build order, the blog's: Conv2D_1, Max_Pool_1, ..., Flatten, Dense_1, ..."""
    names = []
    for i in range(1, len(config.conv_layers) + 1):
        names.append(f"Conv2D_{i}")
        if config.pool_size and i < len(config.conv_layers):
            names.append(f"Max_Pool_{i}")
    return names + ["Flatten"] + [f"Dense_{i}" for i in range(1, len(config.dense_layers) + 2)]


def feature_map_sizes(config: TrainingConfig, image_shape: tuple[int, ...]) -> list[tuple[str, int, int]]:
    """``(layer name, height, width)`` of every conv and pooling layer of ``config`` in build order, from the
    arithmetic alone: Keras' valid padding and stride 1 (``size - kernel + 1``), pooling that drops a remainder
    (``size // pool``). Sizes below 1 are kept (the layer could not be built), so a caller can say where it breaks.

    Args:
        config: the run; only its conv layers and pool size matter.
        image_shape: ``(height, width, channels)`` of the dataset's images.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    sizes = []
    for i, conv in enumerate(config.conv_layers, start=1):
        height, width = height - conv.kernel + 1, width - conv.kernel + 1
        sizes.append((f"Conv2D_{i}", height, width))
        if config.pool_size and i < len(config.conv_layers):  # pooling after every conv layer but the last
            height, width = height // config.pool_size, width // config.pool_size
            sizes.append((f"Max_Pool_{i}", height, width))
    return sizes


def shrink_problem(config: TrainingConfig, image_shape: tuple[int, ...]) -> str | None:
    """Why the conv and pooling layers of ``config`` cannot be built on images of ``image_shape`` (the first layer
    that would leave less than one pixel, with the sizes that lead there), or None if they can."""
    before = f"{int(image_shape[0])}×{int(image_shape[1])}"
    for name, height, width in feature_map_sizes(config, image_shape):
        kind, number = name.rsplit("_", 1)
        if min(height, width) < 1:
            if kind == "Conv2D":
                kernel = config.conv_layers[int(number) - 1].kernel
                return (f"conv layer {number} (kernel {kernel}) leaves no pixels of the input: its input is {before}; "
                        "use smaller kernels, fewer conv layers or less pooling")
            return (f"pooling after conv layer {number} leaves no pixels: {before} pooled by {config.pool_size} is "
                    f"{max(height, 0)}×{max(width, 0)}; use fewer conv layers, a smaller pool or none")
        before = f"{height}×{width}"
    return None


def build_model(config: TrainingConfig, input_shape: tuple[int, int, int], n_classes: int):
    """The CNN of ``config`` as a Keras Sequential model with the blog's layer names, compiled.

    Raises:
        ConfigError: the layers shrink the image below 1 pixel, or the model exceeds the parameter cap.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    regularizer = {"none": None, "l1": keras.regularizers.L1, "l2": keras.regularizers.L2}[config.regularizer]
    dense_regularizer = regularizer(config.regularizer_factor) if regularizer else None
    problem = shrink_problem(config, input_shape)
    if problem:
        raise ConfigError([problem])
    layers: list[Any] = [keras.Input(shape=input_shape, name="image")]
    for i, conv in enumerate(config.conv_layers, start=1):
        layers.append(keras.layers.Conv2D(conv.filters, conv.kernel, activation=conv.activation, name=f"Conv2D_{i}"))
        if config.pool_size and i < len(config.conv_layers):
            layers.append(keras.layers.MaxPooling2D(config.pool_size, name=f"Max_Pool_{i}"))
    layers.append(keras.layers.Flatten(name="Flatten"))
    for i, dense in enumerate(config.dense_layers, start=1):
        layers.append(
            keras.layers.Dense(
                dense.units, activation=dense.activation, kernel_regularizer=dense_regularizer, name=f"Dense_{i}"
            )
        )
    layers.append(
        keras.layers.Dense(
            n_classes,
            activation="softmax",
            kernel_regularizer=dense_regularizer,
            name=f"Dense_{len(config.dense_layers) + 1}",
        )
    )
    model = keras.Sequential(layers, name=config.name.replace(".", "_"))
    if model.count_params() > MAX_PARAMETERS:
        raise ConfigError([f"the model has {model.count_params():,} parameters; the cap is {MAX_PARAMETERS:,}"])
    model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_optimizer(config: TrainingConfig):
    """The optimizer of ``config`` with its learning-rate schedule (Keras 3 public API)."""
    import keras

    schedules = keras.optimizers.schedules
    if config.lr_schedule == "power":
        rate = schedules.InverseTimeDecay(config.learning_rate, config.decay_steps, config.decay_rate)
    elif config.lr_schedule == "exponential":
        rate = schedules.ExponentialDecay(config.learning_rate, config.decay_steps, config.decay_rate)
    else:
        rate = config.learning_rate
    classes = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "nadam": keras.optimizers.Nadam,
        "adamax": keras.optimizers.Adamax,
        "sgd": keras.optimizers.SGD,
    }
    kwargs = {"momentum": config.momentum} if config.optimizer in MOMENTUM_OPTIMIZERS else {}
    return classes[config.optimizer](learning_rate=rate, **kwargs)


class TrainingObserver:
    """Hooks a training run reports to; the default does nothing. Jobs stream these, the CLI prints them."""

    def on_train_begin(self, epochs: int, batches_per_epoch: int) -> None:
        """Called once before the first batch."""

    def on_batch_end(self, epoch: int, batch: int, batches_per_epoch: int) -> None:
        """Called after every batch (``epoch`` and ``batch`` count from 1)."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], probe: dict[str, Any] | None) -> None:
        """Called after every epoch with its metrics and, if a probe is set, the probe image's outputs."""

    def should_stop(self) -> bool:
        """Polled after every batch; True stops the run there."""
        return False

    def probe_target(self) -> tuple[int | str, str] | None:
        """Polled at every epoch end: a new (test image or user image id, layer) to record from this epoch on, or
        None to keep it (a user image's input must be in the run's ``probe_inputs`` by then)."""
        return None


def mark_epoch(batches: int, batches_per_epoch: int) -> dict[str, Any]:
    """The fields that say how much of its epoch a metrics row covers: ``batches`` trained of ``batches_per_epoch``
    and ``partial`` (True when a stop cut the epoch short)."""
    return {"batches": batches, "batches_per_epoch": batches_per_epoch, "partial": batches < batches_per_epoch}


def is_partial(row: dict[str, Any]) -> bool:
    """Whether a metrics row is of an epoch cut short by a stop (rows recorded before rows said so count as full)."""
    return bool(row.get("partial"))


def epoch_position(row: dict[str, Any]) -> float:
    """Where a metrics row sits on an epoch axis: its epoch number, or for a partial epoch the point reached in it
    (epoch 3 stopped after 25 of 100 batches: 2.25)."""
    if not is_partial(row) or not row.get("batches_per_epoch"):
        return float(row["epoch"])
    return row["epoch"] - 1 + row["batches"] / row["batches_per_epoch"]


def _observer_callback(observer: TrainingObserver, config: TrainingConfig, dataset: Dataset,
                       probe_inputs: Mapping[str, np.ndarray]):
    """A Keras callback that forwards progress to ``observer`` and records the probe image each epoch."""
    import keras

    class ObserverCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.epoch_batches = 0
            self.epoch_started = 0.0
            self.stopped = False
            self.probe_model = None
            self.probe_index: int | str | None = None
            self.probe_pixels: np.ndarray | None = None  # [1, H, W, C]
            self.probe_layer: str | None = None

        def set_probe(self, index: int | str | None, layer: str | None) -> None:
            """Record test image ``index`` (or the user image of that id in ``probe_inputs``) at ``layer`` from
            now on (an unknown layer falls back to the first; an index beyond the test set, or a user image
            without an input, turns probing off)."""
            if isinstance(index, str) and index in probe_inputs:
                pixels = np.asarray(probe_inputs[index], dtype=dataset.x_test.dtype)[np.newaxis]
            elif isinstance(index, int) and 0 <= index < len(dataset.x_test):
                pixels = dataset.x_test[index : index + 1]
            else:
                self.probe_model, self.probe_index, self.probe_pixels = None, None, None
                return
            names = [layer_.name for layer_ in self.model.layers]
            layer = layer if layer in names else names[0]
            if self.probe_model is None or layer != self.probe_layer:
                outputs = [self.model.get_layer(layer).output, self.model.outputs[0]]
                self.probe_model = keras.Model(self.model.inputs, outputs)
            self.probe_index, self.probe_layer, self.probe_pixels = index, layer, pixels

        def on_train_begin(self, logs=None):
            self.batches = int(np.ceil(len(dataset.x_train) / config.batch_size))
            observer.on_train_begin(config.epochs, self.batches)
            self.set_probe(config.probe_image, config.probe_layer)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            self.epoch_batches = 0
            self.epoch_started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.epoch_batches = batch + 1
            observer.on_batch_end(self.epoch, batch + 1, self.batches)
            if observer.should_stop():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            metrics = {key: float(value) for key, value in logs.items() if key != "learning_rate"}
            metrics["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
            metrics["epoch_seconds"] = time.perf_counter() - self.epoch_started
            # A stop mid-epoch still ends the epoch in Keras (validation runs, this hook is called): the row must
            # say it covers only part of the training images, or it reads as one more full epoch.
            metrics.update(mark_epoch(self.epoch_batches, self.batches))
            target = observer.probe_target()
            if target is not None:  # a viewer chose another image or layer during the run
                self.set_probe(*target)
            probe = None
            if self.probe_model is not None:
                # a list: the probe model's inputs are the model's input list (a bare tensor makes Keras warn)
                activations, probabilities = self.probe_model([self.probe_pixels], training=False)
                probe = {
                    "image": self.probe_index,
                    "layer": self.probe_layer,
                    "activations": np.asarray(activations)[0],
                    "probabilities": np.asarray(probabilities)[0],
                }
            observer.on_epoch_end(epoch + 1, metrics, probe)

    return ObserverCallback()


@dataclass
class TrainingResult:
    """What a run produced: the model, per-epoch history, final test metrics, and whether it was stopped."""

    model: Any
    history: list[dict[str, float]]
    metrics: dict[str, float]
    duration_seconds: float
    stopped: bool
    dataset: Dataset

    def meta(self, config: TrainingConfig) -> dict[str, Any]:
        """The meta.json of the saved model."""
        return {
            "dataset": config.dataset,
            "class_names": self.dataset.class_names,
            "config": config.to_dict(),
            "history": self.history,
            "metrics": self.metrics,
            "duration_seconds": round(self.duration_seconds, 2),
            "epochs_completed": sum(not is_partial(row) for row in self.history),
            "stopped": self.stopped,
            "train_size": len(self.dataset.x_train),
            "test_size": len(self.dataset.x_test),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


class _HistoryRecorder(TrainingObserver):
    def __init__(self, inner: TrainingObserver) -> None:
        self.inner = inner
        self.history: list[dict[str, float]] = []

    def on_train_begin(self, epochs, batches_per_epoch):
        self.inner.on_train_begin(epochs, batches_per_epoch)

    def on_batch_end(self, epoch, batch, batches_per_epoch):
        self.inner.on_batch_end(epoch, batch, batches_per_epoch)

    def on_epoch_end(self, epoch, metrics, probe):
        self.history.append({"epoch": epoch, **metrics})
        self.inner.on_epoch_end(epoch, metrics, probe)

    def should_stop(self):
        return self.inner.should_stop()

    def probe_target(self):
        return self.inner.probe_target()


def train(
    config: TrainingConfig,
    observer: TrainingObserver | None = None,
    dataset: Dataset | None = None,
    sources: DataSources | None = None,
    probe_inputs: Mapping[str, np.ndarray] | None = None,
) -> TrainingResult:
    """Train the model of ``config`` on its dataset, reporting to ``observer``.

    Args:
        config: a validated configuration (see :func:`parse_config`).
        observer: receives progress, metrics and probe outputs; can stop the run.
        dataset: the data, if already loaded (else ``config.dataset`` is loaded from ``sources``).
        sources: where named datasets live (default: :class:`DataSources`'s defaults).
        probe_inputs: model inputs [H, W, C] of user images to probe, by ``u:`` id, made for this dataset (see
            :func:`app.jobs.worker.user_probe_input`); read when the probe is set, so an entry added during the
            run (a viewer's new choice) is found.

    Returns:
        The trained (or stopped) model with history and final test metrics.
    """
    dataset = (dataset or load_dataset(config.dataset, sources)).subset(config.max_train, config.max_test)
    recorder = _HistoryRecorder(observer or TrainingObserver())
    model = build_model(config, dataset.x_train.shape[1:], len(dataset.class_names))
    callback = _observer_callback(recorder, config, dataset, {} if probe_inputs is None else probe_inputs)
    started = time.perf_counter()
    model.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(dataset.x_test, dataset.y_test),
        callbacks=[callback],
        shuffle=True,
        verbose=0,
    )
    duration = time.perf_counter() - started
    loss, accuracy = model.evaluate(dataset.x_test, dataset.y_test, batch_size=512, verbose=0)
    metrics = {"test_loss": float(loss), "test_accuracy": float(accuracy)}
    return TrainingResult(model, recorder.history, metrics, duration, callback.stopped, dataset)


def inference_copy(model):
    """A copy of ``model`` with its weights but no optimizer state: a third of the size on disk."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone
