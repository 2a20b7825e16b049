"""The MLP view: how each node of a vector layer pushes the next Dense layer's logits of two classes.

``activation x weight`` per node, plus the bias, adds up to the logit exactly; tested against the model's own
output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.core.activations import LayerNotFound
from app.core.errors import InvalidInput

if TYPE_CHECKING:
    from app.core.activations import LayerInfo, ProvidedImage
    from app.core.store import LoadedModel

# Layers that are the identity at inference time: a node's contribution passes through them unchanged.
IDENTITY_AT_INFERENCE = frozenset(
    {"Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Identity",
     "SpatialDropout1D"}
)


@dataclass(frozen=True)
class Contributions:
    """How each node of a layer pushes the next Dense layer's pre-activation ("logit") of two classes.

    ``contributions[j].sum() + bias[j] == logits[j]`` for j in (0, 1).

    Attributes:
        layer, target: the chosen layer and the Dense layer it feeds.
        classes: the two target units (classes when the target is the output layer).
        activations: the chosen layer's output for the image [N].
        contributions: float32 [2, N], activation x weight to each class.
        bias: the target's biases of the two classes (0 without bias).
        logits: the two pre-activations.
        all_logits: every pre-activation of the target layer (softmax of these = the output, for softmax).
    """

    layer: str
    target: str
    image: int | ProvidedImage
    classes: tuple[int, int]
    activations: np.ndarray
    contributions: np.ndarray
    bias: np.ndarray
    logits: np.ndarray
    all_logits: np.ndarray

    @property
    def difference(self) -> np.ndarray:
        """Contributions to class A minus class B [N]: which nodes separate the two."""
        return self.contributions[0] - self.contributions[1]


def next_dense_layer(model, layer_name: str):
    """The Dense layer fed by ``layer_name`` through identity-at-inference layers (Dropout, ...) only.

    Raises:
        LayerNotFound: no such layer.
        InvalidInput: the layer is not followed by a Dense layer, or something in between is not the identity at
            inference (then activation x weight would not add up to the logit).
    """
    import keras

    # A Sequential model is a chain by construction (and a loaded one calls its layers twice, so its tensors are
    # not shared between neighbours); a functional model's graph is checked tensor by tensor.
    linear = isinstance(model, keras.Sequential)
    layers = model.layers
    position = next((i for i, layer in enumerate(layers) if layer.name == layer_name), None)
    if position is None:
        raise LayerNotFound(f"model has no layer {layer_name!r}")
    chosen = layers[position]
    tensor = chosen.output
    if len(tensor.shape) != 2:
        raise InvalidInput(f"layer {layer_name!r} outputs {tuple(tensor.shape[1:])}: contributions need a vector layer")
    for layer in layers[position + 1 :]:
        kind = type(layer).__name__
        # The next layer must consume exactly this tensor (checked on the graph, so a branching model is caught).
        if not linear and not _consumes(layer, tensor):
            raise InvalidInput(f"layer {layer.name!r} after {layer_name!r} does not take its output directly")
        if kind == "Dense":
            return layer
        if kind not in IDENTITY_AT_INFERENCE:
            raise InvalidInput(
                f"layer {layer_name!r} is followed by {layer.name!r} ({kind}), which is not the identity at inference: "
                "contributions are only defined up to the next Dense layer through Dropout-like layers"
            )
        tensor = layer.output
    raise InvalidInput(f"layer {layer_name!r} is not followed by a Dense layer")


def _consumes(layer, tensor) -> bool:
    """True if ``layer`` was called on exactly ``tensor`` in a functional graph."""
    try:
        return layer.input is tensor
    except (AttributeError, ValueError):  # a layer called several times has no single input
        return False


def contributions(loaded: LoadedModel, layer_name: str, image: int | ProvidedImage,
                  classes: tuple[int, int]) -> Contributions:
    """Node activation x weight to the two classes' logits of the next Dense layer, for one test image.

    Args:
        loaded: the model version.
        layer_name: a vector layer (e.g. the first Dense layer) followed by a Dense layer.
        image: test-image index, or a drawn or uploaded image.
        classes: two target units of the next Dense layer (classes when it is the output layer).

    Raises:
        LayerNotFound, ImageOutOfRange, InvalidInput.
    """
    engine = loaded.engine
    info: LayerInfo = engine.layer(layer_name)
    engine.check_image(image)
    target = next_dense_layer(loaded.model, info.name)
    weights = target.get_weights()
    kernel = np.asarray(weights[0], dtype=np.float64)
    bias = np.asarray(weights[1], dtype=np.float64) if target.use_bias else np.zeros(kernel.shape[1])
    n_targets = kernel.shape[1]
    if len(classes) != 2:
        raise InvalidInput(f"give exactly two classes, got {len(classes)}")
    for label in classes:
        if not 0 <= label < n_targets:
            raise InvalidInput(f"class {label} is out of range: {target.name!r} has units 0-{n_targets - 1}")
    activations = engine.activations(info.name, image).astype(np.float64)
    if activations.shape != (kernel.shape[0],):
        raise InvalidInput(
            f"layer {info.name!r} has {activations.size} nodes but {target.name!r} expects {kernel.shape[0]}"
        )
    chosen = np.asarray(classes)
    parts = activations[np.newaxis, :] * kernel[:, chosen].T  # [2, N]
    all_logits = activations @ kernel + bias
    return Contributions(
        layer=info.name,
        target=target.name,
        image=image,
        classes=(int(classes[0]), int(classes[1])),
        activations=activations.astype(np.float32),
        contributions=parts.astype(np.float32),
        bias=bias[chosen],
        logits=parts.sum(axis=1) + bias[chosen],
        all_logits=all_logits,
    )


def logit_layers(loaded: LoadedModel) -> list[str]:
    """The :func:`contribution_layers` that feed the model's output layer, whose units are the classes: the layers
    where "contributions to class A and class B" means what it says (before them, A and B would be units of a hidden
    layer)."""
    output = loaded.model.layers[-1].name if loaded.model.layers else None
    return [name for name in contribution_layers(loaded) if next_dense_layer(loaded.model, name).name == output]


def contribution_layers(loaded: LoadedModel) -> list[str]:
    """Names of the layers the MLP view accepts (a vector layer feeding a Dense layer)."""
    names = []
    for info in loaded.engine.layers:
        if info.is_map:
            continue
        try:
            next_dense_layer(loaded.model, info.name)
        except (InvalidInput, LayerNotFound, AttributeError, ValueError):
            continue
        names.append(info.name)
    return names

