"""Calibrate app/core/training_cost.py: estimated vs measured memory and speed of real training steps.

Each configuration trains in a fresh interpreter (peak RSS is per process): build the model, make random data,
read VmRSS, train two warm-up batches (tracing), then time ``TIMED`` more batches and read VmHWM (peak RSS).
Measured activation memory = (VmHWM - VmRSS before fit) - the same for a tiny model (tracing and Keras' own
overhead), compared with the estimate's forward activations and with its BACKWARD_FACTOR bound.

    python bench/training_cost.py          # the table (a couple of minutes on 2 cores)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMED = 3
CONFIGS = {
    "tiny": {"conv_layers": [{"filters": 4}], "dense_layers": [], "batch_size": 8},
    "blog-64": {},
    "blog-2048": {"batch_size": 2048},
    "wide-3x3-64-nopool-256": {"conv_layers": [{"filters": 64}] * 3, "pool_size": 0,
                               "dense_layers": [{"units": 128}], "batch_size": 256},
    "hostile-4x512-1x1-64": {"conv_layers": [{"filters": 512, "kernel": 1}] * 4, "pool_size": 0,
                             "dense_layers": [], "batch_size": 64},
}


def vm(key: str) -> int:
    """A /proc/self/status field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def child(name: str) -> None:
    """Train ``name``'s config for 2 + TIMED batches; print one JSON line."""
    import numpy as np

    from app.core.training import build_model, parse_config
    from app.core.training_cost import BACKWARD_FACTOR, estimate

    config = parse_config({"name": "bench", **CONFIGS[name]})
    cost = estimate(config, (28, 28, 1), 10, train_images=60_000)
    model = build_model(config, (28, 28, 1), 10)
    rng = np.random.default_rng(0)
    n = config.batch_size * (2 + TIMED)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    before = vm("VmRSS")
    model.fit(x[: 2 * config.batch_size], y[: 2 * config.batch_size], batch_size=config.batch_size, verbose=0)
    started = time.perf_counter()
    model.fit(x[2 * config.batch_size :], y[2 * config.batch_size :], batch_size=config.batch_size, verbose=0)
    seconds = time.perf_counter() - started
    forward_bytes = cost.activation_bytes // BACKWARD_FACTOR  # the estimate without its backward factor
    print(json.dumps({
        "name": name, "parameters": cost.parameters, "params_keras": model.count_params(),
        "forward_activation_bytes": forward_bytes, "estimate_bytes": cost.activation_bytes,
        "rss_before_fit": before, "peak_rss": vm("VmHWM"), "fit_growth": vm("VmHWM") - before,
        "seconds_per_batch": seconds / TIMED,
        "gflops_per_second": 3 * cost.flops_per_image * config.batch_size * TIMED / seconds / 1e9,
    }), flush=True)


def main() -> None:
    """Run every config in its own interpreter and print the comparison."""
    rows = []
    for name in CONFIGS:
        out = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, cwd=ROOT)
        line = [x for x in out.stdout.splitlines() if x.startswith("{")]
        if not line:
            print(name, "failed:", out.stderr[-500:])
            continue
        rows.append(json.loads(line[-1]))
        print(line[-1], flush=True)
    base = next((r["fit_growth"] for r in rows if r["name"] == "tiny"), 0)
    mb = 1e6
    print(f"{'config':26} {'fwd est MB':>10} {'est MB':>10} {'measured MB':>11} {'meas/fwd':>8} {'GFLOP/s':>8}")
    for r in rows:
        measured = r["fit_growth"] - base
        print(f"{r['name']:26} {r['forward_activation_bytes'] / mb:10.0f} {r['estimate_bytes'] / mb:10.0f} "
              f"{measured / mb:11.0f} {measured / max(r['forward_activation_bytes'], 1):8.2f} "
              f"{r['gflops_per_second']:8.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
