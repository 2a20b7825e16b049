"""Server cost of one stroke on the drawing pad: strokes -> rasterised -> MNIST's preprocessing -> stored image
(``STATE_DIR``) -> one forward pass -> the layer's grid and the class probabilities, for ``mnist-cnn``.

Every sample is a new drawing (the digit moved by a fraction of a pixel and resized: a whole-pixel move alone
gives the same model input after MNIST's centring, which the store already holds), so nothing comes from a cache.
Stages are timed separately and together; the target is a median of at most 20 ms for the whole path.
``--full`` first fills the store to its bound (1,000 images), as on a server that has been drawn on for a while,
so that drawings arrive at a full store that must evict. The preview PNG is the drawing pad's next request (by
URL), timed apart from the path.
Usage: ``python bench/own_digit.py [--samples 60] [--layer Conv2D_1] [--full]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core import digits  # noqa: E402
from app.core.activations import ProvidedImage  # noqa: E402
from app.core.store import ModelStore  # noqa: E402
from app.core.user_images import DEFAULT_MAX_IMAGES, UserImageStore, add_array, add_drawing  # noqa: E402
from tests.digit_strokes import place  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--layer", default="Conv2D_1")
    parser.add_argument("--full", action="store_true", help="fill the store to its bound before timing")
    args = parser.parse_args()
    loaded = ModelStore(ROOT / "model_store").get("mnist-cnn")
    recipe = digits.choose_recipe(loaded.images, loaded.meta)
    stages = {"rasterise": [], "preprocess": [], "store": [], "forward + grid + probabilities": [], "whole path": [],
              "preview PNG (its own request)": []}
    distinct = set()
    with tempfile.TemporaryDirectory() as folder:
        images = UserImageStore(Path(folder))
        if args.full:
            noise = np.random.default_rng(0)
            shape = loaded.images.shape[1:]
            for _ in range(DEFAULT_MAX_IMAGES):
                add_array(images, loaded, (recipe.low + (recipe.high - recipe.low) * noise.random(shape)).tolist())
        loaded.engine.tiled(args.layer, 0)  # the probe traced before timing, as on a running server
        for sample in range(args.samples + 5):
            strokes = place(sample % 10, 50 + sample % 40 + 0.37 * sample, 40 + 0.29 * sample, 200 - sample % 7)
            start = time.perf_counter()
            polylines, width, size = digits.parse_strokes(strokes, 18, 280)
            canvas = digits.rasterise(polylines, width, size)
            rasterised = time.perf_counter()
            digits.preprocess(canvas, recipe, ink=True)
            preprocessed = time.perf_counter()
            image = add_drawing(images, loaded, strokes, 18, 280)  # the whole of it again, plus the store
            stored = time.perf_counter()
            distinct.add(image.id)
            provided = ProvidedImage(image.id, image.model_input)
            loaded.engine.tiled(args.layer, provided, scaled=True)
            loaded.engine.probabilities(provided)
            viewed = time.perf_counter()
            images.png(image.id, "preview")
            previewed = time.perf_counter()
            if sample < 5:
                continue  # warm-up
            stages["rasterise"].append(rasterised - start)
            stages["preprocess"].append(preprocessed - rasterised)
            stages["store"].append(stored - preprocessed - (preprocessed - start))
            stages["forward + grid + probabilities"].append(viewed - stored)
            stages["whole path"].append(viewed - preprocessed)
            stages["preview PNG (its own request)"].append(previewed - viewed)
    print(f"{args.samples} drawings of ~60 points, pen 18 px on a 280 px pad, layer {args.layer}, "
          f"store {'full' if args.full else 'empty'} at the start, {len(distinct)} distinct images")
    print(f"{'stage':34} {'median ms':>10} {'p90 ms':>8}")
    for name, times in stages.items():
        ordered = sorted(times)
        print(f"{name:34} {1000 * statistics.median(ordered):10.2f} {1000 * ordered[int(0.9 * len(ordered))]:8.2f}")


if __name__ == "__main__":
    main()
