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
- step: one view as the checkout's design serves a step to ◀ ▶ (``GET /api/models/mnist-cnn/explorer-view`` where
  it has that route, else the render callback), through Flask's test client with a browser's ``Accept-Encoding``
  (routing, the login gate, compression included), a random layer and an image no view touched; which request it
  was (``step_request``), and the bytes of that route's answer for the ``Conv2D_1`` view where it exists;
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
WIRE = "zstd, br, gzip"  # what chromium asks for, minus deflate


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


def explorer_view_path(layer: str, image: int) -> str:
    """The explorer-view route's URL for (``layer``, ``image``) of mnist-cnn, as the page's stepping asks for it."""
    from serving import explorer_view_path as path

    return path(layer, image)


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
    wire = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": WIRE})
    assert plain.status_code == wire.status_code == 200, (plain.status_code, wire.status_code)
    # a callback that failed answers 200 too, with only its message: those bytes are not a view's
    assert b'"explore-heatmap"' in plain.get_data(), plain.get_data()[:300]
    result["bytes"] = {"plain": len(plain.get_data()), "wire": len(wire.get_data()),
                       "encoding": wire.headers.get("Content-Encoding", "none")}
    route_plain = client.get(explorer_view_path(BYTES_LAYER, BYTES_IMAGE))
    view_route = route_plain.status_code == 200
    if view_route:
        route_wire = client.get(explorer_view_path(BYTES_LAYER, BYTES_IMAGE), headers={"Accept-Encoding": WIRE})
        result["route_bytes"] = {"plain": len(route_plain.get_data()), "wire": len(route_wire.get_data()),
                                 "encoding": route_wire.headers.get("Content-Encoding", "none")}
    result["step_request"] = "GET explorer-view route" if view_route else "POST render callback"
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
    untouched = [int(i) for i in rng.permutation(loaded.engine.n_images) if int(i) not in touched]
    # each image at least 2 from the others: a view prefetching its neighbours does not serve another
    fresh = [index for index in untouched if index % 3 == 0][:2 * args.views]
    for i, index in enumerate(fresh[:args.views]):
        started = time.perf_counter()
        loaded.engine.tiled(LAYERS[i % len(LAYERS)], index)
        loaded.engine.probabilities(index)
        forward.append((time.perf_counter() - started) * 1000)
        time.sleep(PAUSE_S)
    result["forward_ms"] = summary(forward) if forward else None

    decoders = importlib.import_module("load").DECODERS

    def step(layer: str, index: int) -> float:
        if view_route:
            path, body, proof = explorer_view_path(layer, index), None, b'"heatmap"'
        else:
            path, body = "/_dash-update-component", render_request(dependencies, layer, index)
            proof = b'"explore-heatmap"'
        started = time.perf_counter()
        if body is None:
            response = client.get(path, headers={"Accept-Encoding": WIRE})
        else:
            response = client.post(path, json=body, headers={"Accept-Encoding": WIRE})
        elapsed = (time.perf_counter() - started) * 1000
        answer = decoders[response.headers.get("Content-Encoding")](response.get_data())
        assert response.status_code == 200 and proof in answer, (path, response.status_code, answer[:300])
        time.sleep(PAUSE_S)
        return elapsed

    steps = [step(LAYERS[i % len(LAYERS)], index) for i, index in enumerate(fresh[args.views:])]
    result["step_ms"] = summary(steps) if steps else None

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
