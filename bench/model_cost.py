"""The numbers behind app/core/model_cost.py's default limits: what real and hostile models cost per image.

For each model: its cost from the traced graph (parameters, activations of one image's pass through every layer,
forward FLOPs), and the time of one image through the explorer's probe (every layer at once; the second call, after
tracing). The UpSampling model is only priced, never run: it is the one the limits must refuse.

    python bench/model_cost.py          # the table (about a minute on 2 cores)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def upsampling_model():
    """The issue's hostile model: a 28×28 digit upsampled 100 times, then a 32-filter 3×3 conv (25 kB as a file)."""
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.UpSampling2D(100)(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def main() -> None:
    import keras
    import numpy as np

    from app.core.activations import ActivationEngine
    from app.core.layer_cost import flops_text
    from app.core.limits import format_bytes
    from app.core.model_cost import DEFAULT_MODEL_LIMITS, check_model, model_cost
    from app.core.store import ModelStore

    models = {
        "mnist-cnn": lambda: ModelStore(ROOT / "model_store").get("mnist-cnn").model,
        "MobileNetV2": lambda: keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10),
        "ResNet50": lambda: keras.applications.ResNet50(input_shape=(224, 224, 3), weights=None, classes=10),
        "UpSampling2D x100": upsampling_model,
    }
    print(f"{'model':<20} {'parameters':>12} {'activations':>12} {'forward':>12} {'probe':>8}  refused")
    for name, build in models.items():
        model = build()
        shape = tuple(model.inputs[0].shape[1:])
        images = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
        engine = ActivationEngine(model, images, name)
        cost = model_cost(model, engine.graph)
        problems = check_model(cost, DEFAULT_MODEL_LIMITS)
        seconds = float("nan")
        if not problems:
            engine.probabilities(0)
            start = time.perf_counter()
            engine.probabilities(1)
            seconds = time.perf_counter() - start
        print(f"{name:<20} {cost.parameters:>12,} {format_bytes(cost.activation_bytes):>12} "
              f"{flops_text(cost.flops):>12} {seconds:>7.3f}s  {'; '.join(problems)[:90]}")


if __name__ == "__main__":
    main()
