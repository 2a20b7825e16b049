"""One image through every layer of a model (the explorer's probe, what a view of an image not cached runs), four
ways in one run: plain Keras, the traced graph, XLA-compiled, and the engine's probe as it is chosen for the model.

For ``mnist-cnn`` (and a 224 px MobileNetV2, ``weights=None``, 10 classes, with ``--large``; its images are random):

- ``keras_ms``: ``predict_on_batch`` of the probe's Keras model (every shown layer's output and the scores);
- ``traced_ms``: the traced graph with an open batch axis (``compiled(model)``, what the probe was before XLA);
- ``xla_ms``: the graph XLA-compiled for one image (``compiled(model, one_image=True)``);
- ``engine_ms``: :meth:`ActivationEngine.forward_pass`, the probe as the engine chose it for the model
  (:func:`app.core.activations.probe_runs_faster_under_xla`), with the outputs as numpy arrays as a view gets them;
- ``first_call_s``: each one's first call (trace, XLA compilation); the engine's is its :meth:`warm_up`, run first,
  as when a model is opened;
- ``max_abs_difference``: the largest difference of the engine's outputs to Keras's over every layer and image timed
  (``traced_max_abs_difference``, ``xla_max_abs_difference``: the same for the other two), and
  ``max_relative_difference``: the engine's, each output's over that output's largest magnitude (float32 rounds
  to 6e-8 of a value; a sum of hundreds of products differs in its last digits when added in another order).

Each figure is the median of ``--calls`` calls (300), one image each, the four ways taking turns image by image (in
a rotating order) so that the noise of a shared machine falls on all of them alike.

Usage::

    .venv/bin/python bench/forward_pass.py [--calls 300] [--large] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

MNIST = "mnist-cnn"
MOBILENET = "mobilenetv2-224"
RANDOM_IMAGES = 30  # distinct images of the 224 px model, taken in turn (300 of them would be 180 MB)


def load(name: str):
    """``(model, images)`` of ``name``: the bundled model and its test set, or MobileNetV2 on random images."""
    import keras

    if name == MNIST:
        from app.core.model_files import read_model_files

        files = read_model_files(ROOT / "model_store" / MNIST)
        return files.model, files.images
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=10)
    return model, np.random.default_rng(0).random((RANDOM_IMAGES, 224, 224, 3), dtype=np.float32)


def seconds(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def measure(name: str, calls: int) -> dict:
    """The figures of one model (see the module's docstring)."""
    from app.core.activations import ActivationEngine, compiled

    model, images = load(name)
    engine = ActivationEngine(model, images, name)
    traced = compiled(engine.probe_model)
    xla = compiled(engine.probe_model, one_image=True, name=name)
    first_call_s = {"engine": seconds(engine.warm_up), "traced": seconds(traced, images[:1]),
                    "xla": seconds(xla, images[:1])}
    ways = {
        "keras": lambda x: [out[0] for out in engine.probe_model.predict_on_batch(x)],
        "traced": lambda x: [np.asarray(out)[0] for out in traced(x)],
        "xla": lambda x: [np.asarray(out)[0] for out in xla(x)],
        "engine": engine.forward_pass,
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    differences = {way: 0.0 for way in ways if way != "keras"}
    relative = 0.0  # the engine's largest difference in an output, over that output's largest magnitude
    order = list(ways)
    for call in range(calls):
        x = images[call % len(images)][np.newaxis]
        outputs = {}
        for way in order[call % 4:] + order[:call % 4]:
            started = time.perf_counter()
            outputs[way] = ways[way](x)
            times[way].append((time.perf_counter() - started) * 1000)
        for way in differences:
            differences[way] = max(differences[way], *(float(np.max(np.abs(got - want))) for got, want
                                                       in zip(outputs[way], outputs["keras"], strict=True)))
        relative = max(relative, *(float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
                                   for got, want in zip(outputs["engine"], outputs["keras"], strict=True)))
    return {
        **{f"{way}_ms": statistics.median(times[way]) for way in ways},
        "max_abs_difference": differences["engine"],
        "max_relative_difference": relative,
        "traced_max_abs_difference": differences["traced"],
        "xla_max_abs_difference": differences["xla"],
        "engine_runs_xla": engine.probe_runs_xla,
        "first_call_s": first_call_s,
        "calls": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls of each way per model (median)")
    parser.add_argument("--large", action="store_true", help="also a 224 px MobileNetV2")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON, per model")
    args = parser.parse_args()
    report = {}
    print(f"{'model':<16} {'keras ms':>9} {'traced ms':>10} {'xla ms':>8} {'engine ms':>10} {'engine':>7} "
          f"{'first call s (engine, traced, xla)':>36} {'max |engine - keras|':>21} {'relative':>9}")
    for name in [MNIST, MOBILENET] if args.large else [MNIST]:
        figures = report[name] = measure(name, args.calls)
        first = figures["first_call_s"]
        print(f"{name:<16} {figures['keras_ms']:>9.3f} {figures['traced_ms']:>10.3f} {figures['xla_ms']:>8.3f} "
              f"{figures['engine_ms']:>10.3f} {'xla' if figures['engine_runs_xla'] else 'traced':>7} "
              f"{first['engine']:>12.2f} {first['traced']:>11.2f} {first['xla']:>11.2f} "
              f"{figures['max_abs_difference']:>21.2e} {figures['max_relative_difference']:>9.1e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
