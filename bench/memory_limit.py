"""Measure how RLIMIT_AS / RLIMIT_DATA interact with TensorFlow: what a short training run needs, what stops a hog.

Each scenario runs in a fresh interpreter (TensorFlow's address-space reservations happen at import, so a limit must
be in place before it), prints one JSON line, and the parent tabulates them:

    python bench/memory_limit.py                  # the whole table (about 2-3 minutes on 2 cores)
    python bench/memory_limit.py child AS 4 train # one scenario: limit kind, GiB (0 = none), task

Tasks: ``import`` (import tensorflow), ``train`` (blog config, 28x28x1, 10 classes, 8 batches of 64, one epoch),
``numpy`` (np.ones of 8 GiB), ``tf`` (tf.ones of 8 GiB), ``fit-big`` (4 conv layers of 512 1x1 filters, no
pooling, batch 512: ~3.3 GB of forward activations), ``train-60k`` / ``train-60k-bN`` (the blog config through
app.core.training.train on 60,000 + 10,000 random images, 20 batches of 64 or N, then evaluation).
Results are summarised in the docstring of app/jobs/memory_limit.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3


def status() -> dict[str, int]:
    """VmPeak, VmSize, VmHWM, VmRSS of this process in MiB (from /proc/self/status)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmPeak", "VmSize", "VmHWM", "VmRSS", "VmData"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def train_60k(batch_size: int = 64) -> None:
    """The blog config through app.core.training.train on a 60,000/10,000 dataset (random pixels), 20 batches."""
    import numpy as np

    from app.core.datasets import Dataset
    from app.core.training import TrainingConfig, TrainingObserver, train

    class StopAfter(TrainingObserver):
        batches = 0

        def on_batch_end(self, epoch, batch, batches_per_epoch):
            self.batches += 1

        def should_stop(self):
            return self.batches >= 20

    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (70_000, 28, 28, 1), dtype=np.uint8) / np.float32(255)).astype(np.float32)
    labels = rng.integers(0, 10, 70_000)
    dataset = Dataset("synthetic", images[:60_000], labels[:60_000], images[60_000:], labels[60_000:],
                      [str(i) for i in range(10)])
    train(TrainingConfig(epochs=1, batch_size=batch_size), StopAfter(), dataset)


def child(kind: str, gib: float, task: str) -> None:
    """Apply the limit, run ``task``, print one JSON line with the outcome and the memory figures."""
    sys.path.insert(0, str(ROOT))
    report: dict = {"kind": kind, "gib": gib, "task": task, "start": status()}
    if gib:
        limit = int(gib * GIB)
        resource.setrlimit(getattr(resource, f"RLIMIT_{kind}"), (limit, limit))
    started = time.perf_counter()
    try:
        if task == "numpy":
            import numpy as np

            np.ones(8 * GIB // 8)
        else:
            import tensorflow as tf

            report["after_import"] = status()
            if task == "tf":
                tf.ones((8 * GIB // 4,)).numpy()
            elif task in ("train", "fit-big"):
                import numpy as np

                from app.core.training import ConvSpec, TrainingConfig, build_model

                if task == "train":
                    config = TrainingConfig(epochs=1)
                else:  # the hostile shape, kept under the parameter cap: its activations are what explode
                    config = TrainingConfig(conv_layers=[ConvSpec(512, 1)] * 4, pool_size=0, dense_layers=[],
                                            batch_size=512)
                rng = np.random.default_rng(0)
                x = rng.random((8 * config.batch_size, 28, 28, 1), dtype=np.float32)
                y = rng.integers(0, 10, len(x))
                model = build_model(config, (28, 28, 1), 10)
                model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
            elif task.startswith("train-60k"):  # Fashion-MNIST's size through the app's train(): 20 batches, evaluate
                train_60k(int(task.partition("-b")[2] or 64))
        report["outcome"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - the point is to see which error the limit produces
        report["outcome"] = f"{type(exc).__name__}: {str(exc)[:160]}"
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["end"] = status()
    print(json.dumps(report), flush=True)


def run(kind: str, gib: float, task: str, timeout: float = 300) -> dict:
    """One scenario in a fresh interpreter; a crash (signal, abort) is reported with its return code."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "child", kind, str(gib), task],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = proc.stderr.strip().splitlines()[-1:] or [""]
    return {"kind": kind, "gib": gib, "task": task, "outcome": f"died rc={proc.returncode}: {tail[0][:160]}",
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    """Print the table of scenarios given on the command line as KIND:GIB:TASK, or the default table."""
    scenarios = sys.argv[1:] or [
        "AS:0:import", "AS:0:train",
        "AS:2:import", "AS:4:import", "AS:4:train", "AS:8:train", "AS:8:tf", "AS:8:numpy",
        "DATA:1:import", "DATA:2:train", "DATA:3:train", "DATA:3:tf", "DATA:3:numpy", "DATA:3:fit-big",
    ]
    for spec in scenarios:
        kind, gib, task = spec.split(":")
        print(json.dumps(run(kind, float(gib), task)), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    else:
        main()
