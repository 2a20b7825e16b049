"""Where the server's time of one step goes: the explorer-view route taken apart, in one process, on mnist-cnn.

Each part is timed alone (median of ``--views`` calls, new images where the part runs a forward pass): the
forward pass, :func:`app.views.explore.explore` on a cached pass, the whole answer (figures and caption) on a
cached pass and on a new image, its JSON, its zstd compression, and the route through Flask's test client (the
request, the checks, the answer compressed) on a new image. The parts say what a step costs beyond the forward
pass; the difference to the route is Flask and the request's checks.

Usage: ``python bench/step_cost.py [--views 300] [--json PATH]``
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

MODEL = "mnist-cnn"
LAYERS = ["Conv2D_1", "Conv2D_2", "Conv2D_3"]


def median_ms(function, count: int) -> float:
    """The median of ``count`` calls ``function(i)``, in milliseconds."""
    times = []
    for index in range(count):
        started = time.perf_counter()
        function(index)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(views: int) -> dict[str, float]:
    """Each part's median time in ms."""
    os.environ.setdefault("MODEL_STORE", str(ROOT / "model_store"))
    from backports import zstd
    from plotly.io.json import to_json_plotly

    from app.context import of_server
    from app.main import server
    from app.ui.explorer_answer import explorer_answer
    from app.views.explore import ExploreView, explore

    context = of_server(server)
    client = server.test_client()
    loaded = context.store.get(MODEL)
    engine = loaded.engine
    n_images = engine.n_images

    def view(index: int, image: int) -> ExploreView:
        return ExploreView(model=MODEL, layer=LAYERS[index % len(LAYERS)], image=image)

    def new_image(index: int, offset: int) -> int:
        return (offset + index) % n_images  # each part its own images: none of them cached by another part

    with server.app_context():
        answer = explorer_answer(context, view(0, 5), prefetch_neighbours=False)
        body = to_json_plotly({"heatmap": answer.heatmap, "input": answer.input_image,
                               "probabilities": answer.probabilities, "caption": answer.caption})
        parts = {
            "forward_pass_ms": median_ms(lambda i: engine.forward_pass(engine.images[i % n_images][None]), views),
            "explore_cached_ms": median_ms(
                lambda i: explore(context.store, context.user_images, view(i, 5), context.statistics), views),
            "answer_cached_ms": median_ms(lambda i: explorer_answer(context, view(i, 5), False), views),
            "answer_new_image_ms": median_ms(
                lambda i: explorer_answer(context, view(i, new_image(i, n_images // 4)), False), views),
            "json_ms": median_ms(lambda i: to_json_plotly({"heatmap": answer.heatmap, "input": answer.input_image,
                                                           "probabilities": answer.probabilities,
                                                           "caption": answer.caption}), views),
            "zstd_ms": median_ms(lambda i: zstd.compress(body.encode(), 1), views),
        }
    headers = {"Accept-Encoding": "zstd, br, gzip"}
    parts["route_new_image_ms"] = median_ms(
        lambda i: client.get(f"/api/models/{MODEL}/explorer-view?layer={LAYERS[i % 3]}&image="
                             f"{new_image(i, n_images // 2)}", headers=headers), views)
    parts["answer_bytes"] = len(body)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = measure(args.views)
    for name, value in parts.items():
        print(f"{name:24s} {value:10.3f}")
    if args.json:
        args.json.write_text(json.dumps(parts, indent=1))


if __name__ == "__main__":
    main()
