"""What one layer costs per image, and the factors of a backward pass: shared by the cost of a training
configuration (:mod:`app.core.training_cost`) and of a model to explore (:mod:`app.core.model_cost`)."""

from __future__ import annotations

from dataclasses import dataclass

BYTES_PER_FLOAT = 4  # Keras' float32 default

# Memory of a training step relative to the forward activations it stores. The backward pass keeps every forward
# output (the gradients need them) and allocates a gradient of the same size per layer, Keras' Conv2D/Dense with an
# activation hold the pre-activation tensor too (3x in the textbook count), and CPU convolutions add packing
# workspace. Measured by bench/training_cost.py (2 cores, TF 2.21, 28x28x1, 10 classes): peak-RSS growth of a real
# training step over a tiny model's, divided by the forward activations of one batch:
#     blog config, batch 2048 ....................... 837 MB / 315 MB = 2.7x
#     3 conv 64 3x3, no pooling, dense 128, batch 256  451 MB / 115 MB = 3.9x
#     4 conv 512 1x1, no pooling, batch 64 .......... 898 MB / 411 MB = 2.2x
#     blog config, batch 64 ........................... 62 MB /  10 MB = 6.3x (fixed costs dominate; absolute: tiny)
# 4 bounds every large case, which is what a refusal must do; the fixed ~60 MB of a step is part of the worker's
# baseline (app/jobs/memory_limit.py), not of this estimate. A gradient with respect to the input (attribution) keeps
# the same forward outputs and gradients, so the same factor bounds it.
BACKWARD_FACTOR = 4
# A training step costs its forward pass plus about twice that backward (gradients with respect to the inputs and
# to the weights): the usual 3x.
TRAINING_FLOPS_FACTOR = 3


@dataclass(frozen=True)
class LayerCost:
    """One layer of a training configuration's model-to-be or of a model to explore.

    Attributes:
        name: the layer name (build_model's ``Conv2D_1``, ``Max_Pool_1``, ``Flatten``, ``Dense_1``, ...; a model's
            own names, ``outer/inner`` inside a nested model).
        kind: the Keras class (``Conv2D``, ``MaxPooling2D``, ``Flatten``, ``Dense``, ...).
        output_shape: without the batch axis: [H, W, C] or [N].
        parameters: weights and biases.
        activations: floats it outputs per image.
        flops: forward floating-point operations per image (a multiply-add counts 2).
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    activations: int
    flops: int

    @property
    def stores_output(self) -> bool:
        """False for Flatten: a reshape that shares its input's buffer, so it costs no activation memory."""
        return self.kind != "Flatten"

    @property
    def shape_text(self) -> str:
        """e.g. ``26×26×512``."""
        return "×".join(str(d) for d in self.output_shape)


def flops_text(flops: float) -> str:
    """FLOPs for messages: ``1.2 TFLOP``, ``19.0 MFLOP``."""
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if flops >= scale:
            return f"{flops / scale:.1f} {unit}"
    return f"{int(flops)} FLOP"
