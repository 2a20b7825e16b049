"""Server cost of a layer or image change on the explorer, against the blog's per-view approach, in one run.

Ours: the explorer's real callback (`app.pages.explore.render`: engine + grid + three figures), then the
figures serialised to JSON as Dash sends them. Layer changes hit the cached forward pass; image changes run one
forward pass of the traced probe model.

Blog: what `img_grid_of_layer_activation` does per view: `load_model` + truncated sub-model + `predict` + a Python
double loop that tiles the maps.

Timings on shared machines are noisy: compare the ratio, measured here in the same process and run.
Usage: ``python bench/explore_latency.py [--views 60] [--blog-views 8]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from plotly.io.json import to_json_plotly  # noqa: E402

MODEL = "mnist-cnn"
LAYERS = ["Conv2D_1", "Max_Pool_1", "Conv2D_2", "Max_Pool_2", "Conv2D_3", "Dense_1"]


def blog_view(model_file: Path, images: np.ndarray, layer_name: str, index: int) -> np.ndarray:
    """The blog's per-view path: load the model, build the sub-model, predict, tile with a double loop."""
    import keras

    model = keras.models.load_model(model_file, compile=False)
    sub_model = keras.Model(inputs=model.inputs, outputs=model.get_layer(layer_name).output)
    activation = sub_model.predict(images[index : index + 1], verbose=0)
    n_maps = activation.shape[-1]
    is_dense = activation.ndim == 2
    size = 1 if is_dense else activation.shape[1]
    per_row = 8
    rows = n_maps // per_row
    grid = np.zeros((rows * size, per_row * size))
    for row in range(rows):
        for col in range(per_row):
            unit = row * per_row + col
            image = activation[:, unit] if is_dense else activation[0, :, :, unit]
            grid[row * size : (row + 1) * size, col * size : (col + 1) * size] = image
    return grid


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=60)
    parser.add_argument("--blog-views", type=int, default=8)
    args = parser.parse_args()

    os.environ.setdefault("MODEL_STORE", str(ROOT / "model_store"))
    from app.context import of_server
    from app.main import server  # builds the app and its context; Dash imports the pages
    from app.pages import explore

    # The render callback reads the app's context through Flask, as it does in a request.
    server.app_context().push()
    store = of_server(server).store
    loaded = store.get(MODEL)
    n_images = loaded.engine.n_images
    rng = np.random.default_rng(0)

    def ours(layer: str, index: int) -> None:
        outputs = explore.render(MODEL, layer, index, "viridis", False, False)
        for figure in outputs[:3]:
            to_json_plotly(figure)

    def ours_without_json(layer: str, index: int) -> None:
        explore.render(MODEL, layer, index, "viridis", False, False)

    ours(LAYERS[0], 0)  # warm-up: traces the probe model once
    layer_change, image_change, no_json = [], [], []
    for view in range(args.views):
        index = int(rng.integers(n_images))
        image_change.append(timed(ours, LAYERS[view % len(LAYERS)], index))  # new image: one forward pass
        layer_change.append(timed(ours, LAYERS[(view + 3) % len(LAYERS)], index))  # same image: cached pass
        no_json.append(timed(ours_without_json, LAYERS[(view + 1) % len(LAYERS)], index))

    model_file = store.folder(MODEL) / "model.keras"
    blog_view(model_file, loaded.images, LAYERS[0], 0)  # warm-up
    blog = [
        timed(blog_view, model_file, loaded.images, LAYERS[view % len(LAYERS)], int(rng.integers(n_images)))
        for view in range(args.blog_views)
    ]

    rows = [
        ("layer change (engine + figures + JSON)", layer_change),
        ("image change (engine + figures + JSON)", image_change),
        ("layer change, engine + figures, no JSON", no_json),
        ("blog per view (load + sub-model + predict + tile)", blog),
    ]
    print(f"{'path':52s} {'median ms':>10s} {'p90 ms':>8s} {'n':>4s}")
    for name, values in rows:
        print(f"{name:52s} {statistics.median(values):10.2f} {np.percentile(values, 90):8.2f} {len(values):4d}")
    worst = max(statistics.median(layer_change), statistics.median(image_change))
    print(f"\nworst median of ours: {worst:.2f} ms (target <= 15 ms)")
    print(f"speed-up over the blog's per-view approach: {statistics.median(blog) / worst:.0f}x (target >= 10x)")


if __name__ == "__main__":
    main()
