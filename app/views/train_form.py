"""The training form's fields <-> a training configuration dict. Pure functions, no Dash: tested directly.

The job errors a page tells apart (:class:`JobRunning`, :class:`JobNotFound`) come from here, so that pages reach
the job system only through this use case.

The form shows lists as text (``"32, 64, 128"`` filters, one kernel size for all layers or one per layer) and
numbers as number inputs (which arrive as int, float or None). :func:`config_from_form` turns them into the dict
:func:`app.core.training.parse_config` validates; it reports only what that cannot (malformed lists, missing
numbers), so every message a user sees is a sentence naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.core.datasets import NAMED_SHAPES
from app.core.errors import InvalidInput
from app.core.parsing import parse_int
from app.core.training import ConfigError, TrainingConfig, conv_layer_names, parse_config
from app.core.training_cost import refuse_over_budget
from app.jobs.records import JobNotFound as JobNotFound  # re-exported for the pages (see the module docstring)
from app.jobs.records import JobRunning as JobRunning

NAMED_DATASETS = {
    "mnist-subset": "Bundled MNIST subset (4,000 train / 1,000 test)",
    "fashion-mnist": "Fashion-MNIST (Debian package, 60,000 / 10,000)",
    "mnist": "Full MNIST (Keras download or cache, 60,000 / 10,000)",
}
OPTIONAL_NUMBERS = ("max_train", "max_test")
REQUIRED_NUMBERS = (
    "pool_size", "regularizer_factor", "momentum", "learning_rate", "decay_steps", "decay_rate", "batch_size",
    "epochs", "seed",
)


def default_form() -> dict[str, Any]:
    """The form's initial values: the blog's run (the :class:`TrainingConfig` defaults), probing test image 0."""
    config = TrainingConfig()
    values = config.to_dict()
    values.update(
        dataset_path="",
        filters=", ".join(str(conv.filters) for conv in config.conv_layers),
        kernels=", ".join(sorted({str(conv.kernel) for conv in config.conv_layers})),
        conv_activation=config.conv_layers[0].activation,
        dense_units=", ".join(str(dense.units) for dense in config.dense_layers),
        dense_activation=config.dense_layers[0].activation if config.dense_layers else "relu",
        probe_image=0,
        probe_layer="Conv2D_1",
    )
    for key in ("conv_layers", "dense_layers"):
        values.pop(key)
    return values


def form_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The form's fields for a stored run's configuration (a job's ``config``): what "run again with these
    settings" fills in. The inverse of :func:`config_from_form` for every configuration the form can express.

    Raises:
        ConfigError: ``config`` is not a valid configuration.
    """
    parsed = parse_config(config)
    values = default_form() | {key: value for key, value in parsed.to_dict().items()
                               if key not in ("conv_layers", "dense_layers", "dataset")}
    named = parsed.dataset in NAMED_DATASETS
    values["dataset"] = parsed.dataset if named else default_form()["dataset"]
    values["dataset_path"] = "" if named else parsed.dataset
    kernels = [conv.kernel for conv in parsed.conv_layers]
    values.update(
        filters=", ".join(str(conv.filters) for conv in parsed.conv_layers),
        kernels=str(kernels[0]) if len(set(kernels)) == 1 else ", ".join(str(kernel) for kernel in kernels),
        conv_activation=parsed.conv_layers[0].activation,
        dense_units=", ".join(str(dense.units) for dense in parsed.dense_layers),
        dense_activation=parsed.dense_layers[0].activation if parsed.dense_layers else "relu",
    )
    return values


def parse_int_list(text: Any, label: str, errors: list[str], allow_empty: bool = False) -> list[int]:
    """``"32, 64 128"`` -> ``[32, 64, 128]``; a malformed list adds a message to ``errors`` and returns []."""
    items = [item for item in str(text or "").replace(",", " ").split() if item]
    if not items and not allow_empty:
        errors.append(f"{label}: enter at least one whole number, e.g. 32, 64, 128")
        return []
    try:
        return [parse_int(item, label) for item in items]
    except InvalidInput:
        errors.append(f"{label}: {text!r} is not a list of whole numbers")
        return []


def _number(value: Any) -> Any:
    # number inputs send 3.0 for "3" in some browsers; the config wants ints where it says so
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def config_from_form(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The raw training configuration the form describes, and the form-level problems found.

    Args:
        values: the form's fields, keyed as in :func:`default_form`.

    Returns:
        ``(raw_config, errors)``; when ``errors`` is empty, ``raw_config`` is ready for ``parse_config``.
    """
    errors: list[str] = []
    # An unreadable list stands in as one harmless layer, so the checks of the other fields of those layers
    # (kernels, activations) still run and every problem is reported at once; with errors, raw is not used.
    filters = parse_int_list(values.get("filters"), "Conv filters", errors)
    kernels = parse_int_list(values.get("kernels"), "Kernel sizes", errors)
    if filters and kernels and len(kernels) not in (1, len(filters)):
        errors.append(f"Kernel sizes: give one size for all conv layers or one per layer ({len(filters)})")
    filters, kernels = filters or [1], kernels or [1]
    kernels = kernels * len(filters) if len(kernels) == 1 else kernels
    known = len(errors)
    dense = parse_int_list(values.get("dense_units"), "Dense units", errors, allow_empty=True)
    dense = [1] if len(errors) > known else dense
    raw: dict[str, Any] = {
        "name": (values.get("name") or "").strip(),
        "dataset": (values.get("dataset_path") or "").strip() or values.get("dataset") or "",
        "conv_layers": [
            {"filters": f, "kernel": k, "activation": values.get("conv_activation")}
            for f, k in zip(filters, kernels, strict=False)
        ],
        "dense_layers": [{"units": units, "activation": values.get("dense_activation")} for units in dense],
    }
    for key in ("regularizer", "optimizer", "lr_schedule"):
        raw[key] = values.get(key)
    for key in REQUIRED_NUMBERS:
        value = _number(values.get(key))
        if value is None or value == "":
            errors.append(f"{key.replace('_', ' ')} is required (a number)")
        raw[key] = value
    for key in OPTIONAL_NUMBERS:
        value = _number(values.get(key))
        raw[key] = None if value in (None, "") else value
    raw["probe_image"] = probe_image_value(values.get("probe_image"))
    raw["probe_layer"] = values.get("probe_layer") or None
    return raw, errors


def probe_image_value(value: Any) -> Any:
    """The probe image field's value for the configuration: blank is none, a whole number a test image, ``u:…``
    a drawn or uploaded image; anything else is passed on for :func:`parse_config` to name."""
    value = _number(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return parse_int(text, "probe_image")
    except InvalidInput:
        return text


def probe_layer_options(filters_text: Any, pool_size: Any = 2, dense_text: Any = "100") -> list[str]:
    """The layer names a run with these conv filters will have (for choosing the probe layer before it exists)."""
    errors: list[str] = []
    filters = parse_int_list(filters_text, "filters", errors) or [32]
    dense = parse_int_list(dense_text, "dense", errors, allow_empty=True)
    pool = _number(pool_size) if isinstance(_number(pool_size), int) else 2
    config = TrainingConfig(pool_size=pool)
    config.conv_layers = config.conv_layers[:1] * len(filters)
    config.dense_layers = config.dense_layers[:1] * len(dense)
    return conv_layer_names(config)


# Which form field a sentence of parse_config or of the size checks is about, by how it starts (the labels those
# checks use; a test walks every field). The first match wins: the specific per-layer labels come first.
FIELD_OF_MESSAGE = (
    (r"conv layer \d+ \(kernel", "kernels"),
    (r"conv layer \d+ filters", "filters"),
    (r"conv layer \d+ kernel", "kernels"),
    (r"conv layer \d+ activation", "conv_activation"),
    (r"conv(_| )layers?", "filters"),
    (r"pooling after", "pool_size"),
    (r"dense layer \d+ activation", "dense_activation"),
    (r"dense(_| )layers?", "dense_units"),
    (r"invalid model name", "name"),
    (r"regularizer_factor", "regularizer_factor"),
    (r"lr_schedule", "lr_schedule"),
    *((re.escape(key), key) for key in (*REQUIRED_NUMBERS, *OPTIONAL_NUMBERS, "regularizer", "optimizer",
                                        "probe_image", "probe_layer")),
)


@dataclass
class FormCheck:
    """What the form describes and everything wrong with it.

    Attributes:
        raw: the raw training configuration (ready for the job runner when ``errors`` is empty).
        problems: ``(field, sentence)`` pairs; the field is a key of :func:`default_form`, or None when the
            sentence is about the run as a whole (e.g. a time budget).
    """

    raw: dict[str, Any]
    problems: list[tuple[str | None, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Every sentence, in the order found."""
        return [message for _field, message in self.problems]

    @property
    def invalid(self) -> set[str]:
        """The fields to mark invalid."""
        return {name for name, _message in self.problems if name}


def field_of(message: str, values: dict[str, Any]) -> str | None:
    """The form field a sentence of the configuration checks is about (None: the run as a whole)."""
    if message.startswith("dataset"):
        return "dataset_path" if (values.get("dataset_path") or "").strip() else "dataset"
    for pattern, key in FIELD_OF_MESSAGE:
        if re.match(pattern, message):
            return key
    return None


def check_form(values: dict[str, Any], skip: frozenset[str] = frozenset()) -> FormCheck:
    """Every problem of the form at once: the form's own (lists, blanks), the configuration's (types and bounds),
    and for a named dataset, whose image size is known, whether the layers fit its images and the job's budget;
    so a run that cannot be built is refused here, not seconds into its job.

    Args:
        values: the form's fields, keyed as in :func:`default_form`.
        skip: fields already reported (by the page's type checks): their other sentences would repeat them.

    Returns:
        The raw configuration and the problems, each tied to its field.
    """
    raw, form_errors = config_from_form(values)
    problems = [(_form_field(message) or field_of(message, values), message) for message in form_errors]
    problems = [(name, message) for name, message in problems if name not in skip]
    reported = set(skip) | {name for name, _message in problems if name}
    later: list[tuple[str | None, str]] = []
    config = None
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        later += [(field_of(message, values), message) for message in exc.errors]
    if config is not None and config.dataset in NAMED_SHAPES:
        image_shape, n_classes, n_train = NAMED_SHAPES[config.dataset]
        try:
            refuse_over_budget(config, image_shape, n_classes, min(n_train, config.max_train or n_train))
        except ConfigError as exc:
            later += [(field_of(message, values), message) for message in exc.errors]
    # a field already found wrong (blank, malformed, not a number) is not reported a second time in other words
    problems += [(name, message) for name, message in later if name is None or name not in reported]
    return FormCheck(raw, _once_per_field(problems))


def _once_per_field(problems: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """One sentence where the configuration's checks say the same of every layer that a single form field fills
    (one activation, one kernel size for all conv layers): "conv layer 1 kernel ... got 0" stands for them all."""
    seen, kept = set(), []
    for name, message in problems:
        key = (name, re.sub(r"layer \d+ ", "layer # ", message))
        if key not in seen:
            seen.add(key)
            kept.append((name, message))
    return kept


def _form_field(message: str) -> str | None:
    """The field of one of :func:`config_from_form`'s own sentences (``"epochs is required"``, ``"Conv filters:"``)."""
    for label, key in (("Conv filters", "filters"), ("Kernel sizes", "kernels"), ("Dense units", "dense_units")):
        if message.startswith(label):
            return key
    key = message.split(" is required")[0].replace(" ", "_")
    return key if key in REQUIRED_NUMBERS else None


def validate_form(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """:func:`check_form`'s configuration and sentences: every problem at once."""
    check = check_form(values)
    return check.raw, check.errors
