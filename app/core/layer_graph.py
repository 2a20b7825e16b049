"""Every layer of a Keras image classifier as a tensor of one symbolic graph, nested models included.

``keras.Model(model.inputs, layer.output)`` breaks exactly where other activation viewers break:

- a model nested in another (a backbone) answers ``.output`` in its own graph, which the outer inputs do not reach;
- the layers inside a nested model are not layers of the outer model at all;
- an input with open dimensions (``keras.Input((None, None, 1))``) gives outputs of unknown height and width.

So the model is called again, layer by layer, on a new input of the test images' shape: a Functional model through
``keras.models.clone_model`` with every layer as its own clone and a ``call_function`` that records what each call
returns (the pattern Keras documents for changing a graph "without recreating new layers"); a Sequential model, which
takes no ``call_function``, as the chain it is. A nested model is called as it is (its output feeds the layers after
it) and, beside that, entered, its layers recorded as ``outer/inner``. Same layers, same weights: the values are the
model's own, and every shape is known.

The layers of a nested model join the outer graph wrapped in a layer of another name (``backbone__conv``): a
``keras.Model`` accepts each name once, and a backbone and the block inside it may both have a ``conv``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

NESTED_SEPARATOR = "/"  # Keras refuses "/" in layer names, so "backbone/conv" never clashes with a real name


@dataclass(frozen=True)
class LayerInfo:
    """A layer that can be shown as a grid.

    Attributes:
        name: the Keras layer name (e.g. ``Conv2D_3``, ``dense_1``); ``outer/inner`` for a layer of a nested model.
        class_name: the Keras class (``Conv2D``, ``MaxPooling2D``, ``Dense``, ``Functional``, ...).
        output_shape: output shape without the batch axis: [H, W, C] or [N].
    """

    name: str
    class_name: str
    output_shape: tuple[int, ...]

    @property
    def is_map(self) -> bool:
        """True for layers with 2-D maps (conv, pooling), False for vectors of nodes."""
        return len(self.output_shape) == 3

    @property
    def n_units(self) -> int:
        """Number of maps or nodes."""
        return self.output_shape[-1]

    @property
    def label(self) -> str:
        """Display text, e.g. ``Conv2D_3 · 3×3×128`` or ``dense_1 · 100``."""
        return f"{self.name} · {'×'.join(str(d) for d in self.output_shape)}"


@dataclass(frozen=True)
class LayerVerdict:
    """How one layer of a model is shown, for the compatibility report.

    Attributes:
        name, class_name: as in :class:`LayerInfo`.
        output_shape: output shape without the batch axis, when it is one tensor of known rank (else None).
        shown_as: ``"maps"`` (a grid of H×W maps), ``"nodes"`` (a grid of nodes) or None (not shown).
        reason: why a layer is not shown (empty when it is).
    """

    name: str
    class_name: str
    output_shape: tuple[int | None, ...] | None
    shown_as: str | None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The report row as JSON data: name, type, output_shape, shown_as (``maps``/``nodes``/None), reason."""
        return {
            "name": self.name,
            "type": self.class_name,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "shown_as": self.shown_as,
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class LayerGraph:
    """The visualisable layer outputs of a model as tensors of one graph on a new input.

    Attributes:
        inputs: the new input tensor, [batch, H, W, C].
        layers: the layers that can be shown as a grid, in the model's order; a nested model's own layers come just
            before the nested model itself.
        tensors: their outputs, in the same order.
        output: the model's (first) output, the class scores.
        verdicts: every layer in the same order, shown or not, with the reason when not.
        layer_inputs: what each shown layer was called on (its first argument), in the order of ``layers``; the
            input of a ReLU or softmax layer gives its pre-activation (feature visualisation, logits).
        layer_objects: the Keras layer of each shown layer, in the order of ``layers``.
        output_layer: the name of the layer whose output is :attr:`output` (None if no shown layer gives it).
    """

    inputs: Any
    layers: tuple[LayerInfo, ...]
    tensors: tuple[Any, ...]
    output: Any
    verdicts: tuple[LayerVerdict, ...] = ()
    layer_inputs: tuple[Any, ...] = ()
    layer_objects: tuple[Any, ...] = ()
    output_layer: str | None = None

    def model(self, outputs):
        """``keras.Model`` from this graph's input to ``outputs`` (tensors of this graph)."""
        import keras

        return keras.Model(self.inputs, outputs)


def trace_layers(model, image_shape: tuple[int, ...] | None = None) -> LayerGraph:
    """Call ``model`` layer by layer on a new input and collect every layer output that can be shown as a grid.

    Args:
        model: a Functional or Sequential Keras model with one image input (it may contain nested models).
        image_shape: [H, W, C] of the images it will see (fills open dimensions such as ``Input((None, None, 1))``);
            default: the model's input shape.

    Returns:
        The :class:`LayerGraph`. Layers whose output is not one tensor of shape [H, W, C] or [N] are left out.

    Raises:
        ValueError, TypeError: Keras cannot call the model on such an input.
    """
    import keras

    shape = tuple(image_shape) if image_shape is not None else tuple(model.inputs[0].shape[1:])
    inputs = keras.Input(shape=shape)
    recorded: dict[str, Any] = {}
    called_on: dict[str, Any] = {}
    outputs = _call_layers(model, inputs, "", recorded, called_on)
    output = keras.tree.flatten(outputs)[0]
    layers, tensors, verdicts, layer_inputs, objects = [], [], [], [], []
    for name, layer in _ordered_layers(model, ""):
        tensor = recorded.get(name)
        output_shape = _grid_shape(tensor)
        if output_shape is not None:
            layers.append(LayerInfo(name, type(layer).__name__, output_shape))
            tensors.append(tensor)
            layer_inputs.append(called_on.get(name))
            objects.append(layer)
        verdicts.append(_verdict(name, type(layer).__name__, tensor, output_shape))
    output_layer = next((info.name for info, tensor in zip(layers, tensors, strict=True) if tensor is output), None)
    return LayerGraph(inputs, tuple(layers), tuple(tensors), output, tuple(verdicts), tuple(layer_inputs),
                      tuple(objects), output_layer)


def _call_layers(model, inputs, prefix: str, recorded: dict[str, Any], called_on: dict[str, Any] | None = None):
    """Call ``model``'s layers on ``inputs`` (a tensor of the new graph), recording each layer's output under
    ``prefix + name`` in ``recorded`` (and its first argument in ``called_on``); nested models are also entered.
    Returns the model's outputs."""
    called_on = {} if called_on is None else called_on
    import keras

    def call(layer, *args, **kwargs):
        callee = _renamed_class()(layer, _graph_name(prefix + layer.name)) if prefix else layer
        outputs = callee(*args, **kwargs)
        if isinstance(layer, keras.Model) and args:
            _enter(layer, args[0], f"{prefix}{layer.name}{NESTED_SEPARATOR}", recorded, called_on)
        # A layer called twice (shared) is shown at its first call, as ``layer.output`` would show it.
        recorded.setdefault(prefix + layer.name, outputs)
        called_on.setdefault(prefix + layer.name, args[0] if args else None)
        return outputs

    if isinstance(model, keras.Sequential):
        outputs = inputs
        for layer in model.layers:
            outputs = call(layer, outputs)
        return outputs
    clone = keras.models.clone_model(
        model,
        input_tensors=keras.tree.pack_sequence_as(model.input, keras.tree.flatten(inputs)),
        clone_function=lambda layer: layer,  # the layers themselves: their weights, no copies
        call_function=call,
    )
    return clone.output


def _graph_name(name: str) -> str:
    """The name of a nested model's layer in the outer graph (Keras names cannot contain "/")."""
    return name.replace(NESTED_SEPARATOR, "__")


@functools.cache
def _renamed_class():
    """The wrapper class, made on first use: Keras is imported only when a model is opened."""
    import keras

    class Renamed(keras.layers.Layer):
        """Calls ``layer`` (its weights, its behaviour) under another name."""

        def __init__(self, layer, name: str) -> None:
            super().__init__(name=name)
            self.layer = layer

        def call(self, *args, **kwargs):
            return self.layer(*args, **kwargs)

    return Renamed


def _enter(nested, inputs, prefix: str, recorded: dict[str, Any], called_on: dict[str, Any]) -> None:
    """Record the layers of the nested model ``nested`` called on ``inputs``; a model whose layers cannot be reached
    (a subclassed model has no graph) keeps only its own output, which the caller records."""
    found: dict[str, Any] = {}
    found_inputs: dict[str, Any] = {}
    try:
        _call_layers(nested, inputs, prefix, found, found_inputs)
    except (ValueError, TypeError, AttributeError, NotImplementedError) as exc:
        logger.info("showing nested model %s as one layer: %s", nested.name, exc)
        return
    for name, tensor in found.items():
        recorded.setdefault(name, tensor)
    for name, tensor in found_inputs.items():
        called_on.setdefault(name, tensor)


def _ordered_layers(model, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(name, layer)`` in the model's own order, a nested model's layers (prefixed) just before the model."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            yield from _ordered_layers(layer, f"{prefix}{layer.name}{NESTED_SEPARATOR}")
        yield prefix + layer.name, layer


def _verdict(name: str, class_name: str, tensor, grid_shape: tuple[int, ...] | None) -> LayerVerdict:
    """Whether a layer's recorded output is shown, as what, and if not, why."""
    if grid_shape is not None:
        return LayerVerdict(name, class_name, grid_shape, "maps" if len(grid_shape) == 3 else "nodes")
    if tensor is None:
        return LayerVerdict(name, class_name, None, None, "not reached from the image input (never called on it)")
    if isinstance(tensor, list | tuple | dict):
        return LayerVerdict(name, class_name, None, None,
                            "it returns several tensors; only layers with one output are shown")
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return LayerVerdict(name, class_name, None, None, "its output is not a tensor")
    dims = tuple(shape[1:])
    if len(shape) not in (2, 4):
        reason = (f"its output has rank {len(dims)} ({'×'.join(str(d) for d in dims) or 'a scalar'}): only maps "
                  "(height × width × channels) and vectors of nodes are shown")
    else:
        reason = "its output size is not known for the test images"
    return LayerVerdict(name, class_name, dims, None, reason)


def _grid_shape(tensor) -> tuple[int, ...] | None:
    """[H, W, C] or [N] of a single output tensor (batch axis dropped), or None if it cannot be shown as a grid."""
    shape = getattr(tensor, "shape", None)
    if shape is None or isinstance(tensor, list | tuple | dict) or len(shape) not in (2, 4):
        return None
    dims = tuple(shape[1:])
    return dims if all(isinstance(d, int) for d in dims) else None
