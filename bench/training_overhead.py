"""What streaming a run to the job store costs, and how long a full Fashion-MNIST epoch takes.

1. Overhead: the same job done twice, in one process, alternating (a, b, b, a, a, b, ...) so drift in machine load
   hits both alike:
   (a) plain: load the data, build the same seeded model, ``model.fit`` (validation each epoch), evaluate, save
       into a model store (:meth:`ModelStore.save`), with no observer at all;
   (b) the production job path, :func:`app.jobs.worker.run_job`: the same steps plus a SQLite job store, the
       observer (per-epoch metrics, the probe image's activations recorded every epoch), the heartbeat/progress
       thread and the stop-flag relay.
   One untimed warm-up run of each comes first. Wall time and process CPU time (all threads) are measured; the
   ratios are median(b) / median(a). Budget: 1.05. On a busy shared machine both swing by several per cent
   between identical runs, so the added work is also timed directly, call by call (3.), which is steady.
2. Full-size epoch: one epoch of the blog config on Debian's 60,000-image Fashion-MNIST through run_job, and
   (``--fashion-plain``) the same epoch as a plain fit, its same-run baseline.
3. The added work per epoch, timed call by call: batch hook x batches, probe forward pass, epoch hook (SQLite
   writes), heartbeats (every 0.5 s on their own thread), as a share of a plain epoch.

Usage: ``python bench/training_overhead.py [--rounds 5] [--epochs 2] [--skip-fashion] [--fashion-plain]
[--json PATH]`` (``--json``: the medians, ratios and epoch times as JSON, for ``bench/run.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import Settings  # noqa: E402
from app.core.datasets import DataSources, load_dataset  # noqa: E402
from app.core.store import ModelStore  # noqa: E402
from app.core.training import build_model, inference_copy, parse_config  # noqa: E402
from app.jobs.sqlite_store import SqliteJobStore  # noqa: E402
from app.jobs.worker import run_job  # noqa: E402

SOURCES = DataSources()


def settings_in(workdir: Path) -> Settings:
    """The settings of a job whose models and state go to ``workdir``."""
    return Settings.from_env({"MODEL_STORE": str(workdir / "models"), "STATE_DIR": str(workdir / "state")})


def clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds."""
    return time.perf_counter(), time.process_time()


def plain_run(raw_config: dict, workdir: Path, name: str) -> tuple[float, float]:
    """Wall and CPU seconds of load + build + fit + evaluate + save, with nothing streamed."""
    import keras

    keras.backend.clear_session()
    wall, cpu = clocks()
    config = parse_config({**raw_config, "name": name})
    data = load_dataset(config.dataset).subset(config.max_train, config.max_test)
    model = build_model(config, data.x_train.shape[1:], len(data.class_names))
    model.fit(
        data.x_train, data.y_train, batch_size=config.batch_size, epochs=config.epochs,
        validation_data=(data.x_test, data.y_test), shuffle=True, verbose=0,
    )
    model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0)
    ModelStore(workdir / "models").save(name, inference_copy(model), data.x_test, data.y_test, {"plain": True})
    return time.perf_counter() - wall, time.process_time() - cpu


def job_run(raw_config: dict, workdir: Path, name: str) -> tuple[float, float, int]:
    """Wall and CPU seconds of the same through run_job; also the number of probe records it wrote."""
    import keras

    keras.backend.clear_session()
    store = SqliteJobStore(workdir / "jobs.sqlite3")
    job = store.create(parse_config({**raw_config, "name": name}).to_dict(), engine="bench")
    wall, cpu = clocks()
    status = run_job(job.id, store, settings_in(workdir))
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    if status != "succeeded":
        raise RuntimeError(f"job run {status}: {store.get(job.id).error}")
    return *elapsed, len(store.probe_epochs(job.id))


def hook_costs(config, dataset, workdir: Path, repeats: int = 200) -> dict[str, float]:
    """Seconds per call of what streaming adds, timed directly (steady even on a busy machine): the observer's batch
    hook, the epoch hook (metrics row + probe record to SQLite), the probe's forward pass and one heartbeat beat
    (what :class:`~app.jobs.worker.Pulse` does every 0.5 s)."""
    import keras
    import numpy as np

    from app.jobs.worker import StoreObserver

    store = SqliteJobStore(workdir / "hooks.sqlite3")
    job = store.create(config.to_dict(), engine="bench")
    store.claim(job.id, os.getpid())
    observer = StoreObserver(store, job.id)
    observer.on_train_begin(config.epochs, 63)
    started = time.perf_counter()
    for i in range(repeats * 50):
        observer.on_batch_end(1, i % 63 + 1, 63)
        observer.should_stop()
    batch_hook = (time.perf_counter() - started) / (repeats * 50)

    keras.backend.clear_session()
    model = build_model(config, dataset.x_train.shape[1:], len(dataset.class_names))
    probe_model = keras.Model(model.inputs, [model.get_layer(config.probe_layer).output, model.outputs[0]])
    image = dataset.x_test[:1]
    probe_model([image], training=False)  # the first call builds the graph once per run; count it separately
    started = time.perf_counter()
    for _ in range(repeats // 10):
        activations, probabilities = probe_model([image], training=False)
    probe_pass = (time.perf_counter() - started) / (repeats // 10)

    metrics = {"loss": 0.1, "accuracy": 0.9, "val_loss": 0.1, "val_accuracy": 0.9, "learning_rate": 1e-3,
               "epoch_seconds": 1.0}
    probe = {"image": 0, "layer": config.probe_layer, "activations": np.asarray(activations)[0],
             "probabilities": np.asarray(probabilities)[0]}
    started = time.perf_counter()
    for epoch in range(1, repeats // 10 + 1):
        observer.on_epoch_end(epoch, metrics, probe)
    epoch_hook = (time.perf_counter() - started) / (repeats // 10)

    started = time.perf_counter()
    for _ in range(repeats // 10):
        store.update(job.id, heartbeat=time.time(), **observer.progress())
        store.get(job.id)
    beat = (time.perf_counter() - started) / (repeats // 10)
    return {"batch_hook": batch_hook, "probe_pass": probe_pass, "epoch_hook": epoch_hook, "beat": beat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each variant")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="mnist-subset")
    parser.add_argument("--skip-fashion", action="store_true")
    parser.add_argument("--fashion-plain", action="store_true", help="also a plain fit of the Fashion epoch")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--hook-repeats", type=int, default=200, help="calls per hook when timed alone")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def run(args: argparse.Namespace) -> dict:
    """Every part (see the module docstring); prints tables and returns the figures."""

    raw = {"dataset": args.dataset, "epochs": args.epochs, "probe_image": 0, "probe_layer": "Conv2D_1"}
    config = parse_config({**raw, "name": "x"})
    n_train = len(load_dataset(args.dataset).x_train)
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "job": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # untimed warm-up of both variants: the first training in a process pays one-time TensorFlow set-up costs
        plain_run({**raw, "epochs": 1}, workdir, "warm-plain")
        job_run({**raw, "epochs": 1}, workdir, "warm-job")
        for round_ in range(args.rounds):
            order = ("plain", "job") if round_ % 2 == 0 else ("job", "plain")
            for variant in order:
                name = f"{variant}-{round_}"
                if variant == "plain":
                    results["plain"].append(plain_run(raw, workdir, name))
                else:
                    wall, cpu, probes = job_run(raw, workdir, name)
                    assert probes == args.epochs, f"expected {args.epochs} probe records, got {probes}"
                    results["job"].append((wall, cpu))
                wall, cpu = results[variant][-1]
                print(f"  round {round_ + 1} {variant:>5}: wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)

        medians = {key: (statistics.median(w for w, _ in rows), statistics.median(c for _, c in rows))
                   for key, rows in results.items()}
        print()
        print(f"Training overhead: blog CNN, {args.dataset} ({n_train:,} train images), {args.epochs} epochs, "
              f"batch {config.batch_size}, {args.rounds} runs each, alternating")
        print(f"| {'variant':<44} | {'median wall s':>13} | {'median cpu s':>12} |")
        print(f"|{'-' * 46}|{'-' * 15}|{'-' * 14}|")
        labels = {"plain": "plain fit + evaluate + save", "job": "run_job (store, probe, heartbeat, stop relay)"}
        for key, (wall, cpu) in medians.items():
            print(f"| {labels[key]:<44} | {wall:13.2f} | {cpu:12.2f} |")
        wall_ratio = medians["job"][0] / medians["plain"][0]
        cpu_ratio = medians["job"][1] / medians["plain"][1]
        # both printed: on a busy shared machine the wall ratio swings by +-10 % between identical runs
        print(f"ratio job/plain (budget 1.05): wall {wall_ratio:.3f} {'OK' if wall_ratio <= 1.05 else 'OVER'}, "
              f"cpu {cpu_ratio:.3f} {'OK' if cpu_ratio <= 1.05 else 'OVER'}")

        costs = hook_costs(config, load_dataset(args.dataset), workdir, args.hook_repeats)
        batches = -(-n_train // config.batch_size)
        epoch_seconds = medians["plain"][0] / args.epochs  # an upper bound: includes load, build, evaluate, save
        per_epoch = (batches * costs["batch_hook"] + costs["probe_pass"] + costs["epoch_hook"]
                     + epoch_seconds / 0.5 * costs["beat"])
        print(f"\nWhat streaming adds, timed directly ({batches} batches/epoch; heartbeat every 0.5 s, "
              "on its own thread):")
        print(f"| {'hook':<47} | {'ms per call':>11} |")
        print(f"|{'-' * 49}|{'-' * 13}|")
        for key, label in (("batch_hook", "batch hook (position + stop flag)"),
                           ("probe_pass", f"probe forward pass ({config.probe_layer} + probabilities)"),
                           ("epoch_hook", "epoch hook (metrics row + probe record, SQLite)"),
                           ("beat", "heartbeat + progress write + stop-flag read")):
            print(f"| {label:<47} | {costs[key] * 1000:11.4f} |")
        share = per_epoch / epoch_seconds
        print(f"per epoch: {per_epoch * 1000:.1f} ms of ~{epoch_seconds:.2f} s = {share:.2%} "
              f"(budget 5 %): {'OK' if share <= 0.05 else 'OVER'}")
        report = {"plain_wall_s": medians["plain"][0], "job_wall_s": medians["job"][0],
                  "plain_cpu_s": medians["plain"][1], "job_cpu_s": medians["job"][1],
                  "hook_share": share, "rounds": args.rounds, "epochs": args.epochs}

        if args.skip_fashion:
            return report
        if not SOURCES.fashion_mnist_dir.is_dir():
            print(f"\nFashion-MNIST not installed at {SOURCES.fashion_mnist_dir} (make bench-deps); skipped")
            return report
        print("\nFull Fashion-MNIST epoch (60,000 train / 10,000 test), blog config, through run_job:", flush=True)
        store = SqliteJobStore(workdir / "fashion.sqlite3")
        job = store.create(parse_config({"name": "fashion", "dataset": "fashion-mnist", "epochs": 1}).to_dict())
        started = time.perf_counter()
        status = run_job(job.id, store, settings_in(workdir))
        total = time.perf_counter() - started
        epoch = store.epochs(job.id)[0]
        print(f"| {'status':<10} | {'epoch s':>8} | {'batches':>7} | {'val_accuracy':>12} | {'whole job s':>11} |")
        print(f"|{'-' * 12}|{'-' * 10}|{'-' * 9}|{'-' * 14}|{'-' * 13}|")
        print(f"| {status:<10} | {epoch['epoch_seconds']:8.1f} | {store.get(job.id).batches_per_epoch:7d} | "
              f"{epoch['val_accuracy']:12.4f} | {total:11.1f} |")
        report.update(fashion_epoch_s=epoch["epoch_seconds"], fashion_job_s=total)
        if args.fashion_plain:
            plain_wall, _ = plain_run({"dataset": "fashion-mnist", "epochs": 1}, workdir, "fashion-plain")
            print(f"the same epoch as a plain fit (load, fit, evaluate, save): {plain_wall:.1f} s")
            report["fashion_plain_s"] = plain_wall
        return report


if __name__ == "__main__":
    main()
