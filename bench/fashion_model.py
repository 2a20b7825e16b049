"""The Fashion-MNIST model the benchmarks use: the blog's CNN trained 1 epoch by the project's training code.

Trained once and kept under ``var/bench/store`` (a model store), so later benchmark runs only load it.
Run ``python -m bench.fashion_model`` to prepare it ahead of a benchmark.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time
from pathlib import Path

from app.config import PROJECT_ROOT

BENCH_STORE = PROJECT_ROOT / "var" / "bench" / "store"
MODEL_NAME = "fashion-cnn"


def ensure_fashion_model(store_root: Path = BENCH_STORE) -> Path:
    """Return the model store holding ``fashion-cnn``, training and saving it first if it is absent."""
    from app.core.store import ModelStore
    from app.core.training import inference_copy, parse_config, train

    if (store_root / MODEL_NAME / "model.keras").is_file():
        return store_root
    config = parse_config({"name": MODEL_NAME, "dataset": "fashion-mnist", "epochs": 1})
    started = time.perf_counter()
    result = train(config)
    print(f"trained {MODEL_NAME} 1 epoch in {time.perf_counter() - started:.0f} s: {result.metrics}")
    ModelStore(store_root).save(
        MODEL_NAME, inference_copy(result.model), result.dataset.x_test, result.dataset.y_test, result.meta(config)
    )
    return store_root


if __name__ == "__main__":
    print(ensure_fashion_model())
