"""The explorer's view on the server, in-process, for any checkout of the project: bytes of a view and the time
of the render callback (engine + figures + Dash's JSON), and optionally the blog's per-view approach.

Measured (``--tree DIR``: the checkout whose ``app`` is imported, default this one):

- bytes of one ``Conv2D_1`` view: the callback's answer through Flask's test client, plain and as sent to a
  browser that asks for ``zstd, br, gzip``;
- image change: a random image and layer (one forward pass), median and p90 over ``--views``;
- layer change: the same image, another layer (the pass is cached);
- next image: image ``i + 1`` right after ``i`` was viewed (what the "next" button asks for; a cache hit where the
  neighbours are prefetched);
- forward pass: the engine alone (grid and probabilities) on images no view touched, the part of an image change
  that is TensorFlow's;
- blog per view (``--blog N``): load the model, build the sub-model, ``predict``, tile with a double loop.

Views are 30 ms apart, a fast person's pace, so background work a view starts (prefetch) is not timed in the next.
Usage: ``python bench/view_server.py [--tree DIR] [--views 60] [--blog 8] [--json PATH]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAUSE_S = 0.03
LAYERS = ["Conv2D_1", "Max_Pool_1", "Conv2D_2", "Max_Pool_2", "Conv2D_3", "Dense_1"]
BYTES_LAYER, BYTES_IMAGE = "Conv2D_1", 3


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median": statistics.median(values), "p90": ordered[int(0.9 * (len(ordered) - 1))], "n": len(values)}


def served_store(app):
    """The model store the imported ``app`` serves from: its :class:`~app.context.AppContext`'s, or in a checkout
    from before the context (such as the default baseline of ``bench/run.py``) the one of ``app.services``."""
    try:
        from app.context import of_server
    except ImportError:
        from app import services

        return services.store()
    return of_server(app.server).store


def render_request(dependencies: list[dict], layer: str, image: int) -> dict:
    """The body of the explorer's render callback for (``layer``, ``image``), built from the app's own
    ``/_dash-dependencies`` as the load benchmarks build it (:func:`load_test.explorer_render`)."""
    from load_test import explorer_render

    return explorer_render(dependencies, layer, image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--views", type=int, default=60)
    parser.add_argument("--blog", type=int, default=0, help="views of the blog's approach (0: skip)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tree = args.tree.resolve()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["MODEL_STORE"] = str(tree / "model_store")
    sys.path.insert(0, str(tree))
    sys.path.insert(1, str(ROOT / "bench"))

    import numpy as np
    from dash._utils import to_json

    from app.main import app
    from app.pages import explore

    # after app: explore_latency puts this checkout first on sys.path
    blog_view = importlib.import_module("explore_latency").blog_view

    store = served_store(app)
    loaded = store.get("mnist-cnn")
    rng = np.random.default_rng(0)
    result: dict = {"tree": str(tree)}

    client = app.server.test_client()
    dependencies = client.get("/_dash-dependencies").get_json()
    body = render_request(dependencies, BYTES_LAYER, BYTES_IMAGE)
    plain = client.post("/_dash-update-component", json=body)
    wire = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": "zstd, br, gzip"})
    assert plain.status_code == wire.status_code == 200, (plain.status_code, wire.status_code)
    # a callback that failed answers 200 too, with only its message: those bytes are not a view's
    assert b'"explore-heatmap"' in plain.get_data(), plain.get_data()[:300]
    result["bytes"] = {"plain": len(plain.get_data()), "wire": len(wire.get_data()),
                       "encoding": wire.headers.get("Content-Encoding", "none")}
    # The render callback called directly reads the app's context as a request to it does (a checkout from
    # before the context ignores this one).
    app.server.app_context().push()

    def view(layer: str, index: int) -> float:
        started = time.perf_counter()
        outputs = explore.render("mnist-cnn", layer, index, "viridis", False, False)
        to_json(list(outputs))  # what Dash serialises for the answer
        elapsed = (time.perf_counter() - started) * 1000
        time.sleep(PAUSE_S)
        return elapsed

    view(LAYERS[0], 0)  # warm-up: the first call traces the probe
    image_change, layer_change, next_image = [], [], []
    touched = set()
    for i in range(args.views):
        index = int(rng.integers(loaded.engine.n_images - 1))
        touched.update(range(index - 2, index + 4))  # the views and the neighbours they prefetch
        image_change.append(view(LAYERS[i % len(LAYERS)], index))
        layer_change.append(view(LAYERS[(i + 3) % len(LAYERS)], index))
        next_image.append(view(LAYERS[(i + 3) % len(LAYERS)], index + 1))
    result["image_change_ms"] = summary(image_change)
    result["layer_change_ms"] = summary(layer_change)
    result["next_image_ms"] = summary(next_image)

    forward = []
    fresh = [int(i) for i in rng.permutation(loaded.engine.n_images) if int(i) not in touched][:args.views]
    for i, index in enumerate(fresh):
        started = time.perf_counter()
        loaded.engine.tiled(LAYERS[i % len(LAYERS)], index)
        loaded.engine.probabilities(index)
        forward.append((time.perf_counter() - started) * 1000)
        time.sleep(PAUSE_S)
    result["forward_ms"] = summary(forward) if forward else None

    if args.blog:
        model_file = store.folder("mnist-cnn") / "model.keras"
        blog_view(model_file, loaded.images, LAYERS[0], 0)
        blog = []
        for i in range(args.blog):
            started = time.perf_counter()
            blog_view(model_file, loaded.images, LAYERS[i % len(LAYERS)], int(rng.integers(loaded.engine.n_images)))
            blog.append((time.perf_counter() - started) * 1000)
        result["blog_ms"] = summary(blog)

    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
