"""Benchmark: feature visualisation on mnist-cnn: one unit on demand, and every layer as the background job runs it.

Usage: ``python -m bench.features`` (``--repeats 9`` for the single unit, ``--layers Conv2D_1,Dense_2`` to limit).

1. *One unit on demand*: what ``GET /api/models/<name>/features?layer=L&unit=u`` computes when the layer is not
   stored yet: the optimal input of one unit (128 Adam steps, jitter, penalties), median over ``--repeats`` calls on
   different units after one warm-up call (which traces the optimiser). Target: median <= 0.5 s.
2. *Whole layers*: :func:`app.core.features.layer_features` per layer (dead units over the test set, then every
   live unit in batches of 128), timed in this process after a warm-up of the layer's graph; the background job
   adds the start of a fresh Python process with TensorFlow (a few seconds) to this.
3. *Attribution*: median ms per map of each method on one image.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import statistics
import time

from app.config import PROJECT_ROOT

UNIT_LIMIT_S = 0.5


def main() -> None:
    """Run the three measurements and print them as JSON lines; exit 1 if one unit takes more than the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--layers", default="")
    args = parser.parse_args()

    import numpy as np

    from app.core.attribution import METHODS, GradientModels, attribute
    from app.core.features import DEFAULT_SETTINGS, Settings, layer_features, optimise_units
    from app.core.store import ModelStore

    loaded = ModelStore(PROJECT_ROOT / "model_store").get("mnist-cnn")
    models = GradientModels(loaded.engine)

    optimise_units(models, "Conv2D_3", np.array([0]))  # warm-up: traces the optimiser of the layer
    times = []
    for unit in range(1, args.repeats + 1):
        start = time.perf_counter()
        optimise_units(models, "Conv2D_3", np.array([unit]))
        times.append(time.perf_counter() - start)
    unit_median = statistics.median(times)
    print(json.dumps({"measure": "one unit on demand (Conv2D_3)", "steps": DEFAULT_SETTINGS.steps,
                      "median_s": round(unit_median, 3), "min_s": round(min(times), 3),
                      "max_s": round(max(times), 3), "limit_s": UNIT_LIMIT_S}))

    names = [name for name in args.layers.split(",") if name] or [info.name for info in loaded.engine.layers
                                                                  if info.class_name != "Flatten"]
    for name in names:
        layer_features(models, name, Settings(steps=2))  # warm-up: traces the layer's optimiser and sub-models
        start = time.perf_counter()
        result = layer_features(models, name)
        elapsed = time.perf_counter() - start
        print(json.dumps({"measure": "whole layer", "layer": name, "units": result.n_units,
                          "dead": int(result.dead.sum()), "seconds": round(elapsed, 2)}))

    image = loaded.images[12]
    for method in METHODS:
        attribute(models, image, method, 7)
        runs = []
        for _ in range(20):
            start = time.perf_counter()
            attribute(models, image, method, 7)
            runs.append((time.perf_counter() - start) * 1000)
        print(json.dumps({"measure": "attribution", "method": method, "median_ms": round(statistics.median(runs), 2)}))
    if unit_median > UNIT_LIMIT_S:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
