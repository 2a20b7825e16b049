"""The training form's fields <-> a training configuration dict. Pure functions, no Dash: tested directly.

The form shows lists as text (``"32, 64, 128"`` filters, one kernel size for all layers or one per layer) and
numbers as number inputs (which arrive as int, float or None). :func:`config_from_form` turns them into the dict
:func:`app.core.training.parse_config` validates; it reports only what that cannot (malformed lists, missing
numbers), so every message a user sees is a sentence naming the field.
"""

from __future__ import annotations

from typing import Any

from app.core.training import ConfigError, TrainingConfig, conv_layer_names, parse_config

NAMED_DATASETS = {
    "mnist-subset": "Bundled MNIST subset (4,000 train / 1,000 test)",
    "fashion-mnist": "Fashion-MNIST (Debian package, 60,000 / 10,000)",
    "mnist": "Full MNIST (Keras download or cache, 60,000 / 10,000)",
}
OPTIONAL_NUMBERS = ("max_train", "max_test", "probe_image")
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


def parse_int_list(text: Any, label: str, errors: list[str], allow_empty: bool = False) -> list[int]:
    """``"32, 64 128"`` -> ``[32, 64, 128]``; a malformed list adds a message to ``errors`` and returns []."""
    items = [item for item in str(text or "").replace(",", " ").split() if item]
    if not items and not allow_empty:
        errors.append(f"{label}: enter at least one whole number, e.g. 32, 64, 128")
        return []
    try:
        return [int(item) for item in items]
    except ValueError:
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
    filters = parse_int_list(values.get("filters"), "Conv filters", errors)
    kernels = parse_int_list(values.get("kernels"), "Kernel sizes", errors)
    if filters and kernels and len(kernels) not in (1, len(filters)):
        errors.append(f"Kernel sizes: give one size for all conv layers or one per layer ({len(filters)})")
    kernels = kernels * len(filters) if len(kernels) == 1 else kernels
    dense = parse_int_list(values.get("dense_units"), "Dense units", errors, allow_empty=True)
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
    raw["probe_layer"] = values.get("probe_layer") or None
    return raw, errors


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


def validate_form(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """:func:`config_from_form` plus the full configuration check: every problem at once, for the page."""
    raw, errors = config_from_form(values)
    if not errors:
        try:
            parse_config(raw)
        except ConfigError as exc:
            errors = exc.errors
    return raw, errors
